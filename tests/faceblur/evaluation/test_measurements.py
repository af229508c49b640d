"""The experiment's measurements on an oracle and a blind method: known answers at both ends."""

import numpy as np

from fourfold.faceblur.data import synthetic
from fourfold.faceblur.evaluation import measurements


class _Oracle:
    """Returns the ground truth it is given, with score 1 (a perfect detector)."""

    name = "oracle"

    def __init__(self, truth):
        self.truth, self.i = truth, 0

    def detect(self, frame):
        boxes = self.truth[self.i % len(self.truth)]
        self.i += 1
        return boxes, np.ones(len(boxes))


class _Blind:
    name = "blind"

    def detect(self, frame):
        return np.zeros((0, 4)), np.zeros(0)


def test_oracle_covers_every_face_and_blind_covers_none():
    stills = synthetic.make_stills(6, "test", seed=5, size=(96, 96))
    truth = [b for _, b in stills]
    oracle = measurements.DetectorMethod("oracle", _Oracle(truth), 0.5, {"mode": "solid", "mask_scale": 1.0})
    res = measurements.evaluate_stills(oracle, stills)
    assert res["ap50"] == 1.0 and res["recall"] == 1.0
    assert res["coverage"] == 1.0 and res["covered_share"] == 1.0
    blind = measurements.DetectorMethod("blind", _Blind(), 0.5, {"mode": "blur"})
    res = measurements.evaluate_stills(blind, stills)
    assert res["ap50"] == 0.0 and res["coverage"] == 0.0 and res["changed_outside"] == 0.0
    assert res["psnr_outside"] == 100.0  # capped: nothing changed


def test_clip_leaks_and_hold():
    clip = synthetic.make_clip(seed=2, size=(90, 160), n_frames=12, n_tracks=2, face_px=(20, 40), poles=0)
    truth = [t[:, 1:5] for t in clip.truth]
    # Drop the detection every third frame: per frame that leaks, a 1-frame hold does not.
    gappy = [b if i % 3 else np.zeros((0, 4)) for i, b in enumerate(truth)]
    kwargs = {"mode": "solid", "mask_scale": 1.2}
    plain = measurements.evaluate_clips(measurements.DetectorMethod("p", _Oracle(gappy), 0.5, kwargs), [clip])
    held = measurements.evaluate_clips(
        measurements.DetectorMethod("h", _Oracle(gappy), 0.5, kwargs, hold=1), [clip]
    )
    faces_in_dropped = sum(len(b) for i, b in enumerate(truth) if i % 3 == 0 and i > 0)
    assert plain["leak_frames"] >= faces_in_dropped > 0
    assert held["leak_frames"] < plain["leak_frames"]

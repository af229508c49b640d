"""Identity leakage probe (optional dlib embedding): zero for an untouched face, grows with blur strength."""

import numpy as np
import pytest

from fourfold.faceblur.evaluation import identity
from fourfold.faceblur.tool.blur import anonymize

pytestmark = pytest.mark.skipif(not identity.available(), reason="dlib-bin / face-recognition-models absent")


def test_distance_zero_when_untouched_and_grows_with_blur():
    import skimage.data

    image = skimage.data.astronaut()
    box = np.array([182, 59, 270, 177], float)
    probe = identity.IdentityProbe()
    assert probe.distance(image, image, box) == pytest.approx(0.0, abs=1e-6)
    weak = probe.distance(image, anonymize(image, [box], "blur", sigma_ratio=0.02), box)
    strong = probe.distance(image, anonymize(image, [box], "blur", sigma_ratio=0.15), box)
    assert 0 < weak < strong
    assert strong > identity.SAME_PERSON  # the paper-strength blur no longer matches

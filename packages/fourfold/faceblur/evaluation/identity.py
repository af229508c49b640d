"""Identity leakage: does a face recogniser still match the anonymised face to the original?

Uses dlib's ResNet face embedding (128-d, same-person threshold 0.6) from the optional packages
``dlib-bin`` and ``face-recognition-models``. Both crops are aligned with the 5-point landmarks found on the
*original* face, so only the pixels differ. A face leaks when the distance stays below 0.6.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SAME_PERSON = 0.6


LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
ENCODER_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def model_dir() -> Path | None:
    """The ``models/`` folder of ``face-recognition-models`` (found without importing it: its ``__init__``
    needs ``pkg_resources``, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    return folder if (folder / ENCODER_FILE).is_file() and (folder / LANDMARKS_FILE).is_file() else None


def available() -> bool:
    """Whether the optional embedding model (dlib and its weights) is installed."""
    return importlib.util.find_spec("dlib") is not None and model_dir() is not None


class IdentityProbe:
    """Embedding distance between an original face and its anonymised version."""

    def __init__(self):
        if not available():
            raise ImportError(
                "identity leakage needs the optional packages dlib-bin and face-recognition-models"
            )
        import dlib

        folder = model_dir()
        self._dlib = dlib
        self.landmarks = dlib.shape_predictor(str(folder / LANDMARKS_FILE))
        self.encoder = dlib.face_recognition_model_v1(str(folder / ENCODER_FILE))

    def _descriptor(self, image: np.ndarray, shape) -> np.ndarray:
        chip = self._dlib.get_face_chip(np.ascontiguousarray(image), shape, size=150, padding=0.25)
        return np.asarray(self.encoder.compute_face_descriptor(chip))

    def distance(self, original: np.ndarray, anonymised: np.ndarray, box) -> float:
        """Embedding distance for the face in ``box`` (x1, y1, x2, y2) of two RGB uint8 images."""
        x1, y1, x2, y2 = (int(round(v)) for v in box[:4])
        shape = self.landmarks(np.ascontiguousarray(original), self._dlib.rectangle(x1, y1, x2, y2))
        a = self._descriptor(original, shape)
        b = self._descriptor(anonymised, shape)
        return float(np.linalg.norm(a - b))

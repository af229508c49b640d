"""Reading weights files safely: tensor dicts only (``torch.load(weights_only=True)``), never pickled code."""

from __future__ import annotations

from pathlib import Path

TRAIN_HINT = "train them with `make faceblur-train` or pass --weights"


def load_tensor_dict(path: str | Path, what: str, keys: tuple[str, ...] = (), hint: str = "") -> dict:
    """The dict stored in ``path``; ``keys`` must be present. Errors name the file and ``what`` it should be.

    ``hint`` is appended to the not-found message (how to obtain the file).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} weights {path} not found" + (f"; {hint}" if hint else ""))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code, or a corrupt file
        raise ValueError(f"{path} is not a fourfold {what} weights file (a tensor dict)") from err
    missing = [k for k in keys if not (isinstance(payload, dict) and k in payload)]
    if not isinstance(payload, dict) or missing:
        raise ValueError(f"{path} is not a fourfold {what} weights file (no {', '.join(missing) or 'dict'})")
    return payload

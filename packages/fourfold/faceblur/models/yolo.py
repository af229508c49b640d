"""Approach 1's detector: an ultralytics YOLOv8n built from yaml, trained offline by ultralytics' trainer.

Offline recipe (every process that imports ultralytics): ``YOLO_OFFLINE``, ``YOLO_AUTOINSTALL=false``,
``YOLO_CONFIG_DIR`` inside the run folder holding a TTF font copied to ``Ultralytics/Arial.ttf`` (else every
``train()`` sends a request to fetch it), ``pretrained=False`` and ``amp=False`` (the AMP check downloads a
checkpoint).

Weights are shipped as a plain tensor dict (``{"yaml": ..., "imgsz": ..., "state_dict": ...}`` in fp16) and
read with ``torch.load(weights_only=True)``: ultralytics' own ``.pt`` files are pickles, unsafe to load from
a user. Inference is ours (letterbox, forward, NMS) so it needs nothing but the model class.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

DEFAULT_YAML = "yolov8n.yaml"
UPSCALE_MODEL = "upscale_model"  # key of the small-face pass's own network in a weights file (optional)


def default_config_dir() -> Path:
    """Where ultralytics keeps its settings when no run folder is given (never inside the package)."""
    import tempfile

    return Path(tempfile.gettempdir()) / f"fourfold-ultralytics-{os.getuid()}"


def offline_environment(config_dir: str | Path, threads: int | None = None) -> Path:
    """Set ultralytics' offline variables, with its settings and font in ``config_dir``; returns it."""
    import matplotlib

    config_dir = Path(config_dir)
    font_dir = config_dir / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (font_dir / name).exists():
            shutil.copyfile(font, font_dir / name)
    os.environ["YOLO_OFFLINE"] = "true"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    # Importing ultralytics sets OMP_NUM_THREADS=1 when unset: decide it ourselves.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or os.cpu_count() or 1))
    return config_dir


def train(
    data_yaml: str | Path,
    run_dir: str | Path,
    *,
    epochs: int,
    imgsz: int = 320,
    batch: int = 16,
    seed: int = 0,
    model_yaml: str = DEFAULT_YAML,
    workers: int = 0,
    plots: bool = False,
    init: str | Path | None = None,
    **overrides,
) -> Path:
    """Train a one-class face detector with ultralytics' trainer; return the path of its ``best.pt``.

    ``init``: tensor-dict weights (``export_weights``' format) to fine-tune from; None = from scratch.
    """
    import torch

    run_dir = Path(run_dir)
    offline_environment(run_dir / "ultralytics_config")
    pretrained: bool | str = False
    if init is not None:
        pretrained = str(start_checkpoint(init, run_dir / "yolo_init.pt"))
    import ultralytics.utils.torch_utils
    from ultralytics import YOLO

    # ultralytics resets torch to cpu_count - 1 threads for CPU training (one thread on a 2-core machine);
    # keep the count the caller chose (faceblur.threads).
    ultralytics.utils.torch_utils.NUM_THREADS = torch.get_num_threads()

    model = YOLO(model_yaml)
    model.train(
        data=str(data_yaml),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        seed=seed,
        deterministic=True,
        pretrained=pretrained,
        amp=False,
        device="cpu",
        workers=workers,
        plots=plots,
        project=str(run_dir),
        name="yolo",
        exist_ok=True,
        verbose=False,
        **overrides,
    )
    best = run_dir / "yolo" / "weights" / "best.pt"
    if not best.is_file():
        raise RuntimeError(f"ultralytics finished without writing {best}")
    return best


def start_checkpoint(weights: str | Path, target: str | Path) -> Path:
    """Tensor-dict weights wrapped as an ultralytics checkpoint, for its trainer to start from."""
    import torch

    from fourfold.core.files import atomic_path

    model, _ = load_model(weights)
    with atomic_path(target) as tmp:
        torch.save({"model": model.float(), "epoch": -1, "train_args": {}}, tmp)
    return Path(target)


def export_weights(
    checkpoint: str | Path,
    target: str | Path,
    *,
    imgsz: int,
    model_yaml: str = DEFAULT_YAML,
    threshold: float | None = None,
) -> Path:
    """Convert an ultralytics checkpoint *we trained* to the safe tensor-dict format (fp16); ``threshold``:
    the confidence threshold calibrated for these weights (``calibration``), used when none is given."""
    import torch

    from fourfold.core.files import atomic_path

    # Our own training output, not a user file: the pickle is trusted here and nowhere else.
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = ckpt.get("ema") if ckpt.get("ema") is not None else ckpt["model"]
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.float().state_dict().items()}
    payload = {"yaml": model_yaml, "imgsz": int(imgsz), "nc": 1, "state_dict": state}
    if threshold is not None:
        payload["threshold"] = float(threshold)
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return Path(target)


def with_threshold(
    weights: str | Path,
    target: str | Path,
    threshold: float,
    flip: bool = False,
    upscale_threshold: float | None = None,
    upscale_weights: str | Path | None = None,
) -> Path:
    """A copy of tensor-dict weights that carries its calibrated confidence threshold (0 < t < 1), whether
    that threshold applies to flip-fused scores (``detectors.YoloDetector(flip=True)``) and, when given, the
    small-face pass's own threshold (``YoloDetector(upscale=True)``) and its own network: the tensor-dict
    file ``upscale_weights`` (else a network the weights already carry stays)."""
    import torch

    from fourfold.core.files import atomic_path

    for value in (threshold, upscale_threshold):
        if value is not None and not 0 < value < 1:
            raise ValueError(f"a confidence threshold lies in (0, 1), got {value}")
    payload = read_weights(weights)
    payload["threshold"] = float(threshold)
    payload["flip"] = bool(flip)
    payload.pop("upscale_threshold", None)
    if upscale_threshold is not None:
        payload["upscale_threshold"] = float(upscale_threshold)
    if upscale_weights is not None:
        small = read_weights(upscale_weights)
        payload[UPSCALE_MODEL] = {k: small[k] for k in ("yaml", "imgsz", "nc", "state_dict") if k in small}
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return Path(target)


def read_weights(weights: str | Path) -> dict:
    """The tensor dict of a YOLO weights file (``weights_only=True``), keys checked."""
    from fourfold.faceblur.models.weightfiles import TRAIN_HINT, load_tensor_dict

    # An ultralytics .pt is a pickle: convert checkpoints you trained with export_weights instead.
    return load_tensor_dict(weights, "YOLO", ("yaml", "state_dict"), hint=TRAIN_HINT)


def stored_threshold(payload: dict) -> float | None:
    """The confidence threshold calibrated for these weights, or None when the file carries none."""
    value = payload.get("threshold")
    return None if value is None else float(value)


def stored_upscale_threshold(payload: dict) -> float | None:
    """The small-face pass's calibrated threshold, or None (the pass then uses ``stored_threshold``)."""
    value = payload.get("upscale_threshold")
    return None if value is None else float(value)


def upscale_payload(payload: dict) -> dict | None:
    """The small-face pass's own network (a tensor dict like the file's), or None: the pass uses the
    file's network."""
    small = payload.get(UPSCALE_MODEL)
    if small is not None and not (isinstance(small, dict) and {"yaml", "state_dict"} <= small.keys()):
        raise ValueError(f"the weights' {UPSCALE_MODEL!r} entry is not a YOLO tensor dict")
    return small


def stored_flip(payload: dict) -> bool:
    """Whether the weights' calibrated threshold was set for flip-fused scores (False when absent)."""
    return bool(payload.get("flip", False))


def load_model(weights: str | Path):
    """Build the detection model from its yaml and load a tensor-dict weights file (``weights_only=True``)."""
    return build_model(read_weights(weights), weights)


def build_model(payload: dict, weights: str | Path = "weights"):
    """(model in eval mode, training image size) from a tensor dict read by ``read_weights``."""
    offline_environment(Path(os.environ.get("YOLO_CONFIG_DIR") or default_config_dir()))
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    nc = int(payload.get("nc", 1))
    config = {**yaml_model_load(payload["yaml"]), "nc": nc}  # no "overriding nc" notice
    model = DetectionModel(config, nc=nc, verbose=False)
    try:
        model.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    except RuntimeError as err:
        raise ValueError(f"{weights} does not fit {payload['yaml']} with {nc} class(es)") from err
    model.eval()
    return model, int(payload.get("imgsz", 320))


def letterbox(image: np.ndarray, size: int, stride: int = 32) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Longer side resized to ``size``, padded to a multiple of ``stride``: (image, scale, (pad_x, pad_y))."""
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
    ph, pw = (-nh) % stride, (-nw) % stride
    top, left = ph // 2, pw // 2
    padded = cv2.copyMakeBorder(
        resized, top, ph - top, left, pw - left, cv2.BORDER_CONSTANT, value=(114, 114, 114)
    )
    return padded, scale, (left, top)


def decode(raw, scale: float, pad: tuple[int, int], threshold: float, iou: float = 0.5):
    """Raw head output (4 + nc, A) -> boxes (N, 4) in the original image and scores (N,), after NMS."""
    import torch
    import torchvision

    pred = raw.T  # (A, 4 + nc)
    scores, _ = pred[:, 4:].max(dim=1)
    keep = scores >= threshold
    pred, scores = pred[keep], scores[keep]
    cx, cy, w, h = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
    order = torchvision.ops.nms(boxes, scores, iou)
    boxes, scores = boxes[order].numpy().astype(np.float64), scores[order].numpy().astype(np.float64)
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - pad[0]) / scale
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - pad[1]) / scale
    return boxes, scores

"""The faceblur task, ``python -m fourfold experiment=faceblur/<preset>``: the only module reading the config.

Stages (``faceblur.stage``):
- ``train``: synthetic stills -> YOLO (ultralytics' trainer) and the U-Net (L1, MSE; ``core.train.fit``),
  weights written to the run folder and, with ``train.export``, into the package (``weights/``).
- ``experiment``: (train first when ``train.enabled``) then evaluate every method on held-out stills, clips
  and package photos; metrics named ``<method>/<metric>``.
- ``anonymize``: the tool on one image, folder or video (the same code as ``fourfold-blur``).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from omegaconf import DictConfig

from fourfold.core.runs import current_run_dir
from fourfold.core.seeding import seed_everything

log = logging.getLogger(__name__)

YOLO_FILE = "yolo_face.pt"
UNET_FILES = {"l1": "unet_l1.pt", "mse": "unet_mse.pt"}


def blur_kwargs(cfg: DictConfig) -> dict:
    b = cfg.faceblur.blur
    return {"mode": b.mode, "sigma_ratio": b.sigma_ratio, "mask_scale": b.mask_scale, "feather": b.feather}


def _stills(cfg: DictConfig, n: int, split: str, seed: int):
    from fourfold.faceblur.synthetic import make_stills

    d = cfg.faceblur.data
    return make_stills(
        n,
        split,
        seed,
        size=(d.image_size, d.image_size),
        max_faces=d.max_faces,
        face_px=(d.face_min_px, d.face_max_px),
    )


def training_stills(cfg: DictConfig):
    """Train stills (train identities) and val stills (test identities), plus WIDER train when given."""
    seed = int(cfg.seed)
    train = _stills(cfg, cfg.faceblur.data.train_images, "train", seed)
    val = _stills(cfg, cfg.faceblur.data.val_images, "test", seed + 1000)
    root = cfg.faceblur.data.root
    if root:
        from fourfold.faceblur.data import load_records, parse_wider

        root = Path(root)
        records = parse_wider(root / "wider_face_split" / "wider_face_train_bbx_gt.txt")
        train += list(load_records(records, root / "WIDER_train" / "images"))
    return train, val


def train_yolo(cfg: DictConfig, run_dir: Path, train, val) -> Path:
    from fourfold.faceblur import data, yolo

    y = cfg.faceblur.yolo
    root = run_dir / "yolo_data"
    data.write_yolo_split(train, root, "train")
    data.write_yolo_split(val, root, "val")
    t0 = time.perf_counter()
    best = yolo.train(
        data.write_yolo_yaml(root),
        run_dir,
        epochs=y.epochs,
        imgsz=y.imgsz,
        batch=y.batch,
        seed=int(cfg.seed),
        model_yaml=y.model,
    )
    log.info("YOLO trained in %.0f s", time.perf_counter() - t0)
    return yolo.export_weights(best, run_dir / "weights" / YOLO_FILE, imgsz=y.imgsz, model_yaml=y.model)


def unet_config(cfg: DictConfig) -> dict:
    u = cfg.faceblur.unet
    return {
        "encoder": u.encoder,
        "self_attention": bool(u.self_attention),
        "spectral_norm": bool(u.spectral_norm),
    }


def train_unet(cfg: DictConfig, run_dir: Path, loss: str, train, val) -> Path:
    import torch

    from fourfold.core.train import fit
    from fourfold.faceblur import unet
    from fourfold.faceblur.lit import UNetModule, crop_loader

    u = cfg.faceblur.unet
    seed_everything(int(cfg.seed))
    model = unet.build_unet(**unet_config(cfg), encoder_weights=u.encoder_weights)
    module = UNetModule(model, loss=loss, lr=u.lr, face_weight=u.face_weight)
    kwargs = {"sigma_ratio": cfg.faceblur.blur.sigma_ratio}
    train_loader = crop_loader(train, u.crop, u.batch, seed=int(cfg.seed), shuffle=True, **kwargs)
    val_loader = crop_loader(val[:32], u.crop, u.batch, seed=int(cfg.seed) + 1, shuffle=False, **kwargs)
    t0 = time.perf_counter()
    fit(
        module,
        train_loader,
        val_loader,
        trainer_cfg=cfg.trainer,
        run_dir=run_dir / f"unet_{loss}",
        max_steps=int(u.steps),
        max_epochs=-1,
        seed=int(cfg.seed),
        val_check_interval=None,
        check_val_every_n_epoch=1,
        limit_val_batches=4,
    )
    log.info("U-Net (%s) trained in %.0f s", loss, time.perf_counter() - t0)
    target = run_dir / "weights" / UNET_FILES[loss]
    unet.save_weights(model, target, config=unet_config(cfg))
    torch.set_grad_enabled(True)
    return target


def train_models(cfg: DictConfig, run_dir: Path) -> dict[str, Path]:
    """Train the models listed in ``train.models``; returns their weight files in the run folder."""
    train, val = training_stills(cfg)
    out: dict[str, Path] = {}
    for name in cfg.faceblur.train.models:
        if name == "yolo":
            out["yolo"] = train_yolo(cfg, run_dir, train, val)
        elif name in ("unet_l1", "unet_mse"):
            out[name] = train_unet(cfg, run_dir, name.split("_")[1], train, val)
        else:
            raise ValueError(f"faceblur.train.models: unknown model {name!r}; use yolo, unet_l1, unet_mse")
    return out


def export(weights: dict[str, Path]) -> None:
    """Copy trained weights into the package so the tool works on a fresh checkout."""
    from fourfold.faceblur.detectors import packaged_weights

    for path in weights.values():
        target = packaged_weights(path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        log.info("exported %s -> %s", path, target)


def weight_paths(cfg: DictConfig, trained: dict[str, Path]) -> dict[str, str | None]:
    """Which weights each method uses: configured file > trained in this run > packaged (None)."""
    f = cfg.faceblur
    return {
        "yolo": f.yolo.weights or (str(trained["yolo"]) if "yolo" in trained else None),
        "unet_l1": f.unet.weights_l1 or (str(trained["unet_l1"]) if "unet_l1" in trained else None),
        "unet_mse": f.unet.weights_mse or (str(trained["unet_mse"]) if "unet_mse" in trained else None),
    }


def main(cfg: DictConfig) -> dict[str, float]:
    import torch

    run_dir = current_run_dir()
    torch.set_num_threads(int(cfg.faceblur.threads))
    seed_everything(int(cfg.seed))
    stage = cfg.faceblur.stage
    if stage == "train":
        t0 = time.perf_counter()
        weights = train_models(cfg, run_dir)
        if cfg.faceblur.train.export:
            export(weights)
        sizes = {f"weights_mb/{k}": p.stat().st_size / 1e6 for k, p in weights.items()}
        return {"train_seconds": time.perf_counter() - t0, **sizes}
    if stage == "experiment":
        from fourfold.faceblur.evaluate import evaluate

        trained = train_models(cfg, run_dir) if cfg.faceblur.train.enabled else {}
        return evaluate(cfg, run_dir, weight_paths(cfg, trained))
    if stage == "anonymize":
        from fourfold.faceblur.cli import anonymize_path

        a = cfg.faceblur.anonymize
        if not a.input:
            raise ValueError(
                "faceblur.stage=anonymize needs faceblur.anonymize.input=<image, folder or video>"
            )
        stats = anonymize_path(
            a.input,
            a.output,
            method=a.method,
            hold=a.hold,
            threshold=None,
            unet_size=cfg.faceblur.unet.size,
            **blur_kwargs(cfg),
        )
        return {k: float(v) for k, v in stats.items()}
    raise ValueError(f"faceblur.stage must be train, experiment or anonymize; got {stage!r}")

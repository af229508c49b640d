"""The faceblur task, ``python -m fourfold experiment=faceblur/<preset>``: the only module reading the config.

Stages (``faceblur.stage``):
- ``train``: synthetic stills -> YOLO (ultralytics' trainer) and the U-Net (L1, MSE; ``core.train.fit``),
  weights written to the run folder and, with ``train.export``, into the package (``weights/``).
- ``experiment``: (train first when ``train.enabled``) then evaluate every method on held-out stills, clips
  and package photos; metrics named ``<method>/<metric>``.
- ``realset``: every method on the real-photo evaluation set (``realeval``), next to deface 1.5 itself.
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


def weights_name(cfg: DictConfig, name: str) -> str:
    """A trained model's file name: the packaged name with ``train.weights_suffix`` before the extension."""
    stem, ext = name.rsplit(".", 1)
    return f"{stem}{cfg.faceblur.train.weights_suffix}.{ext}"


def blur_kwargs(cfg: DictConfig) -> dict:
    b = cfg.faceblur.blur
    return {"mode": b.mode, "sigma_ratio": b.sigma_ratio, "mask_scale": b.mask_scale, "feather": b.feather}


def _stills(cfg: DictConfig, n: int, split: str, seed: int):
    from fourfold.faceblur.data.synthetic import make_stills

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
    from fourfold.faceblur.data.formats import load_records, parse_fddb, parse_wider

    root, fddb = cfg.faceblur.data.root, cfg.faceblur.data.fddb_root
    if root:
        root = Path(root)
        records = parse_wider(root / "wider_face_split" / "wider_face_train_bbx_gt.txt")
        train += list(load_records(records, root / "WIDER_train" / "images"))
    if fddb:
        fddb = Path(fddb)
        folds = sorted((fddb / "FDDB-folds").glob("FDDB-fold-*-ellipseList.txt"))
        if not folds:
            raise FileNotFoundError(
                f"faceblur.data.fddb_root={fddb} has no FDDB-folds/FDDB-fold-*-ellipseList.txt"
            )
        train += list(load_records([r for f in folds for r in parse_fddb(f)], fddb / "originalPics"))
    d = cfg.faceblur.data
    if d.real_images:  # pseudo-labelled real photos from packages, minus the evaluation set (realstills)
        from fourfold.faceblur.data.realstills import training_split

        hard_detector = None
        if d.hard_negatives > 0:  # a hard-negative round: the starting YOLO's false detections
            from fourfold.faceblur.tool.detectors import YoloDetector

            if not cfg.faceblur.yolo.init:
                raise ValueError(
                    "faceblur.data.hard_negatives > 0 needs faceblur.yolo.init (the YOLO to mine)"
                )
            hard_detector = YoloDetector(cfg.faceblur.yolo.init, threshold=float(d.hard_threshold))
        real_train, real_val = training_split(
            dict(d.real_folders), d.real_cache, d.real_images, d.real_val_images, seed,
            size=d.image_size, face_px=(d.face_min_px, d.real_face_max_px),
            hard_detector=hard_detector, hard_share=float(d.hard_negatives), low_res=float(d.real_low_res),
        )  # fmt: skip
        train, val = train + real_train, val + real_val
    return train, val


def train_yolo(cfg: DictConfig, run_dir: Path, train, val) -> Path:
    from fourfold.faceblur.data import formats
    from fourfold.faceblur.models import yolo

    y = cfg.faceblur.yolo
    root = run_dir / "yolo_data"
    formats.write_yolo_split(train, root, "train")
    formats.write_yolo_split(val, root, "val")
    t0 = time.perf_counter()
    best = yolo.train(
        formats.write_yolo_yaml(root),
        run_dir,
        epochs=y.epochs,
        imgsz=y.imgsz,
        batch=y.batch,
        seed=int(cfg.seed),
        model_yaml=y.model,
        init=y.init,
        close_mosaic=y.close_mosaic,
    )
    log.info("YOLO trained in %.0f s", time.perf_counter() - t0)
    target = run_dir / "weights" / weights_name(cfg, YOLO_FILE)
    return yolo.export_weights(best, target, imgsz=y.imgsz, model_yaml=y.model)


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
    from fourfold.faceblur.lit import UNetModule, crop_loader
    from fourfold.faceblur.models import unet

    u = cfg.faceblur.unet
    seed_everything(int(cfg.seed))
    if u.teacher == "yolo":  # the authors' targets: frames blurred by approach 1 (YOLO + blur)
        from fourfold.faceblur.lit import teacher_stills
        from fourfold.faceblur.tool.detectors import packaged_weights

        # this run's YOLO when it trained one, else the packaged one of the same name
        name = weights_name(cfg, YOLO_FILE)
        own = run_dir / "weights" / name
        teacher = u.teacher_weights or str(own if own.is_file() else packaged_weights(name))
        train = teacher_stills(train, teacher, cfg.faceblur.yolo.threshold)
    if u.init:
        model = unet.load_unet(u.init, encoder_weights=u.encoder_weights)
    else:
        model = unet.build_unet(**unet_config(cfg), encoder_weights=u.encoder_weights)
    module = UNetModule(model, loss=loss, lr=u.lr, face_weight=u.face_weight)
    kwargs = {"sigma_ratio": cfg.faceblur.blur.sigma_ratio}
    if u.teacher == "yolo":  # ... blurred as the tool's approach 1 blurs them (its mask and strength)
        from fourfold.faceblur.tool.pipeline import DEFAULT_MASK_SCALE, DEFAULT_SIGMA_RATIO

        kwargs = {"sigma_ratio": DEFAULT_SIGMA_RATIO, "mask_scale": DEFAULT_MASK_SCALE}
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
    target = run_dir / "weights" / weights_name(cfg, UNET_FILES[loss])
    unet.save_weights(model, target, config=unet_config(cfg))
    torch.set_grad_enabled(True)
    return target


def train_mask_unet(cfg: DictConfig, run_dir: Path) -> Path:
    """The face-mask U-Net (issue 21): stills of the real training pool with the default tool as teacher
    (``data.maskstills``), ``core.train.fit`` on ``lit.MaskUNetModule``; resumes from the run folder."""
    from fourfold.core.train import fit
    from fourfold.faceblur.data import maskstills
    from fourfold.faceblur.lit import MaskStills, MaskUNetModule, mask_loader
    from fourfold.faceblur.models import unet

    u, m, d = cfg.faceblur.unet, cfg.faceblur.unet.mask, cfg.faceblur.data
    seed, face_px = int(cfg.seed), (int(m.face_min_px), int(m.face_max_px))
    seed_everything(seed)
    hard_detector = None
    if m.hard_weights:  # approach 1's false detections on training photos become hard negatives
        from fourfold.faceblur.tool.detectors import YoloDetector

        hard_detector = YoloDetector(m.hard_weights, threshold=float(d.hard_threshold))
    t0 = time.perf_counter()
    pool, val_pool = maskstills.build_pools(
        dict(d.real_folders), d.real_cache, u.crop, face_px, dict(m.mix), int(m.pool), int(m.val_pool), seed,
        hard_detector=hard_detector,
    )  # fmt: skip
    config = {**unet_config(cfg), "head": "mask", "trainable_stages": int(u.trainable_stages)}
    model = unet.build_unet(**config, encoder_weights=u.encoder_weights)
    module = MaskUNetModule(model, lr=u.lr, image_weight=m.image_weight, steps=int(u.steps))
    fit(
        module,
        mask_loader(MaskStills(*pool, seed, face_px), u.batch, seed=seed, shuffle=True),
        mask_loader(MaskStills(*val_pool, seed + 1, face_px), u.batch, seed=seed, shuffle=False),
        trainer_cfg=cfg.trainer,
        run_dir=run_dir / "unet_mask",
        max_steps=int(u.steps),
        max_epochs=-1,
        seed=seed,
        checkpoint_every_n_steps=int(m.checkpoint_every),
        val_check_interval=int(m.val_every),
        check_val_every_n_epoch=None,
    )
    target = run_dir / "weights" / weights_name(cfg, "unet_mask.pt")
    unet.save_weights(model, target, config=config)
    log.info("U-Net (mask) trained in %.0f s: %s", time.perf_counter() - t0, target)
    return target


def train_models(cfg: DictConfig, run_dir: Path) -> dict[str, Path]:
    """Train the models listed in ``train.models``; returns their weight files in the run folder."""
    models = list(cfg.faceblur.train.models)
    stills = training_stills(cfg) if set(models) - {"unet_mask"} else None
    out: dict[str, Path] = {}
    for name in models:
        if name == "yolo":
            out["yolo"] = train_yolo(cfg, run_dir, *stills)
        elif name in ("unet_l1", "unet_mse"):
            out[name] = train_unet(cfg, run_dir, name.split("_")[1], *stills)
        elif name == "unet_mask":
            out[name] = train_mask_unet(cfg, run_dir)
        else:
            raise ValueError(
                f"faceblur.train.models: unknown model {name!r}; use yolo, unet_l1, unet_mse, unet_mask"
            )
    return out


def export(weights: dict[str, Path]) -> None:
    """Copy trained weights into the package so the tool works on a fresh checkout."""
    from fourfold.faceblur.tool.detectors import packaged_weights

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
        "unet_mask": f.unet.weights_mask or (str(trained["unet_mask"]) if "unet_mask" in trained else None),
    }


def build_methods(cfg: DictConfig, weights: dict[str, str | None]) -> dict:
    """The table's rows, by name: detector methods get a low-floor detector for AP."""
    from fourfold.faceblur.evaluation import measurements
    from fourfold.faceblur.models.unet import UNetAnonymizer, load_unet
    from fourfold.faceblur.tool.detectors import CenterFaceDetector, YoloDetector, packaged_weights

    f = cfg.faceblur
    blur = blur_kwargs(cfg)
    methods = {}
    for name in f.eval.methods:
        if name == "centerface":
            det = CenterFaceDetector(threshold=measurements.AP_FLOOR)
            methods[name] = measurements.DetectorMethod(name, det, 0.2, blur)
        elif name in ("yolo", "yolo_hold"):
            det = YoloDetector(weights["yolo"], threshold=measurements.AP_FLOOR, imgsz=f.yolo.infer_size)
            hold = int(f.eval.hold) if name == "yolo_hold" else 0
            methods[name] = measurements.DetectorMethod(name, det, float(f.yolo.threshold), blur, hold)
        elif name in ("unet_l1", "unet_mse"):
            path = weights[name] or packaged_weights(UNET_FILES[name.split("_")[1]])
            model = load_unet(path, encoder_weights=f.unet.encoder_weights)
            methods[name] = measurements.UNetMethod(
                name, UNetAnonymizer(model, f.unet.size, f.unet.change_threshold)
            )
        elif name == "unet_mask":  # the face-mask U-Net at its calibrated settings (issue 21)
            from fourfold.faceblur.tool.maskblur import MaskBlurAnonymizer

            model = load_unet(weights[name] or packaged_weights("unet_mask.pt"))
            methods[name] = measurements.UNetMethod(name, MaskBlurAnonymizer(model))
        else:
            raise ValueError(f"faceblur.eval.methods: unknown method {name!r}")
    return methods


def real_photos() -> list:
    """Package photos with a known face, both held-out identities (read at run time, never committed):
    astronaut, Grace Hopper."""
    import numpy as np
    import skimage.data

    from fourfold.faceblur.data.synthetic import ASTRONAUT_FACE, HOPPER_FACE, hopper_photo

    return [
        (skimage.data.astronaut(), np.array([ASTRONAUT_FACE], float)),
        (hopper_photo(), np.array([HOPPER_FACE], float)),
    ]


def evaluate(cfg: DictConfig, run_dir: Path, weights: dict[str, str | None]) -> dict[str, float]:
    """Every method on held-out stills, clips and the package photos; examples saved to the run folder."""
    import numpy as np

    from fourfold.faceblur.data.synthetic import make_clip
    from fourfold.faceblur.evaluation import identity, measurements
    from fourfold.faceblur.tool.detectors import CenterFaceDetector

    f = cfg.faceblur
    seed = int(cfg.seed)
    stills = _stills(cfg, f.data.test_images, "test", seed + 2000)
    clips = [
        make_clip(
            seed + 3000 + k,
            "test",
            size=(f.data.clip_height, f.data.clip_width),
            n_frames=f.data.clip_frames,
            n_tracks=f.data.clip_tracks,
        )
        for k in range(f.data.clips)
    ]
    photos = real_photos() if f.data.real_photos else []
    independent = CenterFaceDetector(threshold=0.2)
    probe = None
    if identity.available():
        probe = identity.IdentityProbe()
    else:
        log.warning("identity leakage not measured: install dlib-bin and face-recognition-models")
    methods = build_methods(cfg, weights)
    shown = [img for img, boxes in stills if len(boxes)][: f.eval.examples] + [
        clips[0].frames[len(clips[0].frames) // 2]
    ]
    examples = {"input_stills": np.stack(shown[:-1]), "input_clip": shown[-1][None]}
    out: dict[str, float] = {}
    for name, method in methods.items():
        t0 = time.perf_counter()
        # The independent detector must not be the one that blurred: no residual score for CenterFace.
        judge = None if name == "centerface" else independent
        kw = {"iou": f.eval.iou, "coverage_share": f.eval.coverage_share}
        res = measurements.evaluate_stills(method, stills, independent=judge, identity=probe, **kw)
        res.update(measurements.evaluate_clips(method, clips, **kw))
        if photos:
            real = measurements.evaluate_stills(method, photos, independent=judge, identity=probe, **kw)
            keys = ("coverage", "residual_detect", "psnr_outside", "identity_leak", "identity_dist")
            res.update({f"real_{k}": real[k] for k in keys if k in real})
        out.update({f"{name}/{k}": float(v) for k, v in res.items()})
        examples[f"{name}_stills"] = measurements.example_frames(method, shown[:-1])
        examples[f"{name}_clip"] = measurements.example_frames(method, shown[-1:])
        log.info("evaluated %s in %.0f s: %s", name, time.perf_counter() - t0, res)
    if probe is not None and photos:
        out.update(measurements.strength_study(probe, photos))
    np.savez_compressed(run_dir / "examples.npz", **examples)
    out["n_test_faces"] = float(sum(len(b) for _, b in stills))
    out["n_clip_frames"] = float(sum(len(c.frames) for c in clips))
    return out


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
        trained = train_models(cfg, run_dir) if cfg.faceblur.train.enabled else {}
        return evaluate(cfg, run_dir, weight_paths(cfg, trained))
    if stage == "realset":
        from fourfold.faceblur.evaluation import realeval

        f = cfg.faceblur
        chosen = {"yolo": f.yolo.weights, "unet_l1": f.unet.weights_l1, "unet_mse": f.unet.weights_mse,
                  "unet_mask": f.unet.weights_mask}  # fmt: skip
        return realeval.evaluate(list(f.realset.methods), {k: v for k, v in chosen.items() if v})
    if stage == "anonymize":
        from fourfold.faceblur.tool.cli import anonymize_path

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
    raise ValueError(f"faceblur.stage must be train, experiment, realset or anonymize; got {stage!r}")

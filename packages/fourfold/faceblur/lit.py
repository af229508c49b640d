"""Lightning glue for the U-Net: the face-weighted loss, face-centred crops, and a LightningModule for
``fourfold.core.train.fit``; for the face-mask U-Net (issue 21), a dataset of stills with the teacher's
targets and a module that trains on ``facemask.mask_losses``."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fourfold.faceblur.data.formats import unet_triplet
from fourfold.faceblur.models.unet import IMAGENET_MEAN, IMAGENET_STD, normalise

LOSSES = ("l1", "mse")


def weighted_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str, face_weight: float
):
    """Mean of the per-pixel L1 or squared error, weighted ``face_weight`` inside the face mask and 1 outside.

    Faces cover a few percent of the pixels: unweighted, the identity map nearly minimises the loss.
    ``mask`` is (B, H, W) in [0, 1]; ``pred`` and ``target`` are (B, 3, H, W).
    """
    if kind == "l1":
        err = (pred - target).abs()
    elif kind == "mse":
        err = (pred - target) ** 2
    else:
        raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
    weight = (1.0 + (face_weight - 1.0) * mask).unsqueeze(1)
    return (err * weight).sum() / (weight.sum() * err.shape[1])


def teacher_stills(stills, weights, threshold: float):
    """The stills with their boxes replaced by approach 1's detections (YOLO, ``weights``; None = packaged):
    the authors trained their U-Net on frames blurred by their detector, not on annotations."""
    from fourfold.faceblur.tool.detectors import YoloDetector

    detector = YoloDetector(weights, threshold=threshold)
    return [(image, detector.detect(image)[0]) for image, _ in stills]


class FaceCrops(Dataset):
    """Face-centred square crops of (input, target, mask) triplets; a still without faces gives a random crop.

    Targets are the stills with their faces blurred by the paper operator, computed once. Crop positions are
    drawn from a generator seeded per (seed, index), so an epoch is reproducible.
    """

    def __init__(self, stills, crop: int, seed: int = 0, sigma_ratio: float = 0.15, mask_scale: float = 1.0):
        self.items = [
            unet_triplet(img, boxes, sigma_ratio=sigma_ratio, mask_scale=mask_scale) + (boxes,)
            for img, boxes in stills
        ]
        self.crop, self.seed = crop, seed
        self.epoch = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        image, target, mask, boxes = self.items[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        h, w = image.shape[:2]
        c = min(self.crop, h, w)
        if len(boxes):
            x1, y1, x2, y2 = boxes[rng.integers(len(boxes))]
            cx, cy = (x1 + x2) / 2 + rng.uniform(-c / 4, c / 4), (y1 + y2) / 2 + rng.uniform(-c / 4, c / 4)
            x0, y0 = int(np.clip(cx - c / 2, 0, w - c)), int(np.clip(cy - c / 2, 0, h - c))
        else:
            x0, y0 = int(rng.integers(0, w - c + 1)), int(rng.integers(0, h - c + 1))
        s = (slice(y0, y0 + c), slice(x0, x0 + c))
        return normalise(image[s])[0], normalise(target[s])[0], torch.from_numpy(mask[s].copy())


def crop_loader(
    stills,
    crop: int,
    batch: int,
    *,
    seed: int,
    shuffle: bool,
    sigma_ratio: float = 0.15,
    mask_scale: float = 1.0,
):
    """A DataLoader of face-centred crops (single process: the machines have two cores)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        FaceCrops(stills, crop, seed, sigma_ratio, mask_scale),
        batch_size=batch,
        shuffle=shuffle,
        generator=generator,
        num_workers=0,
        drop_last=shuffle,
    )


class UNetModule(L.LightningModule):
    """Trains the decoder of a U-Net (the encoder is frozen) with the face-weighted loss."""

    def __init__(self, model, loss: str = "l1", lr: float = 1e-3, face_weight: float = 10.0):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
        self.model, self.loss_kind, self.lr, self.face_weight = model, loss, lr, face_weight

    def forward(self, x):
        return self.model(x)

    def _loss(self, batch):
        x, y, m = batch
        return weighted_loss(self.model(x), y, m, self.loss_kind, self.face_weight)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), prog_bar=True)

    def on_train_epoch_start(self):
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if isinstance(dataset, FaceCrops):
            dataset.epoch = self.current_epoch

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.lr)


class MaskStills(Dataset):
    """Items ``(image, blurred, mask)`` of a pool of stills (``maskstills.make_pool``): the still and the
    teacher's blurred frame as float (3, S, S) in [0, 1], the teacher's mask (S, S) in {0, 1}
    (``maskstills.teacher_targets``). Outside the faces the blurred frame uses a face's strength: the still's
    median face, or a face of log-uniform height in ``background_px`` drawn from (seed, index)."""

    def __init__(self, images: np.ndarray, boxes, seed: int = 0, background_px=(10, 160)):
        self.images, self.boxes, self.seed, self.background_px = images, boxes, seed, background_px

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from fourfold.faceblur.data.maskstills import teacher_targets
        from fourfold.faceblur.data.synthetic import face_height
        from fourfold.faceblur.models.facemask import TOOL_SIGMA_RATIO

        image, boxes = self.images[i], self.boxes[i]
        if len(boxes):
            side = float(np.median(np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
        else:
            side = face_height(np.random.default_rng([self.seed, 22, i]), *self.background_px)
        blurred, mask = teacher_targets(image, boxes, TOOL_SIGMA_RATIO * side)

        def unit(a):
            return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 255.0

        return unit(image), unit(blurred), torch.from_numpy(mask)


def mask_loader(dataset: MaskStills, batch: int, *, seed: int, shuffle: bool):
    """A single-process DataLoader of ``MaskStills`` (the machines have two cores)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch, shuffle=shuffle, generator=generator, num_workers=0, drop_last=shuffle
    )


class MaskUNetModule(L.LightningModule):
    """Trains a mask-head U-Net on ``facemask.mask_losses``: bce + dice + ``image_weight`` x image L1.
    Validation also logs the hard mask's IoU (threshold 0.5) over the whole validation set's pixels."""

    def __init__(
        self, model, lr: float = 1e-3, image_weight: float = 5.0, weight_decay: float = 1e-4, steps: int = 0
    ):
        super().__init__()
        if model.head != "mask":
            raise ValueError("MaskUNetModule trains a U-Net built with head='mask'")
        self.model, self.lr, self.image_weight, self.weight_decay = model, lr, image_weight, weight_decay
        self.steps = steps  # > 0: learning rate warmed up over 5 % of the steps, then cosine to 5 %
        self._val = [0.0, 0.0]  # intersection, union

    def forward(self, image01):
        mean = image01.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = image01.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return self.model((image01 - mean) / std)

    def _losses(self, batch):
        from fourfold.faceblur.models.facemask import mask_losses

        image, blurred, mask = batch
        logits = self(image)
        parts = mask_losses(logits, mask, image, blurred)
        parts["loss"] = parts["bce"] + parts["dice"] + self.image_weight * parts["image"]
        return logits, parts

    def training_step(self, batch, batch_idx):
        _, parts = self._losses(batch)
        self.log_dict({f"train_{k}": v for k, v in parts.items() if k != "loss"})
        self.log("train_loss", parts["loss"], prog_bar=True)
        return parts["loss"]

    def on_validation_epoch_start(self):
        self._val = [0.0, 0.0]

    def validation_step(self, batch, batch_idx):
        logits, parts = self._losses(batch)
        self.log_dict({f"val_{k}": v for k, v in parts.items()})
        hard, mask = logits[:, 0] > 0, batch[2] > 0.5
        self._val[0] += float((hard & mask).sum())
        self._val[1] += float((hard | mask).sum())

    def on_validation_epoch_end(self):
        self.log("val_iou", self._val[0] / max(self._val[1], 1.0), prog_bar=True)

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.steps <= 0:
            return optimizer
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, self.steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def warmup_cosine(step: int, steps: int, warmup: float = 0.05, final: float = 0.05) -> float:
    """Learning-rate factor: linear from 1/w to 1 over the first ``w = warmup * steps`` steps, then a cosine
    from 1 down to ``final`` at ``steps`` (and ``final`` after)."""
    w = max(1, int(warmup * steps))
    if step < w:
        return (step + 1) / w
    t = min(1.0, (step - w) / max(1, steps - w))
    return final + (1 - final) * 0.5 * (1 + np.cos(np.pi * t))

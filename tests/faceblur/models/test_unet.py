"""U-Net: output shapes and range, building blocks against their definitions, one step lowers the loss,
weights round-trip, and the change-mask compositing keeps the background exact."""

import numpy as np
import pytest
import torch

from fourfold.faceblur.lit import weighted_loss
from fourfold.faceblur.models import unet


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM)


def test_output_shape_and_range(small_model):
    x = torch.randn(2, 3, 64, 96)
    y = small_model(x)
    assert y.shape == x.shape
    assert float(y.detach().min()) > -3 and float(y.detach().max()) < 3


def test_encoder_is_frozen(small_model):
    assert all(not p.requires_grad for p in small_model.encoder.parameters())
    small_model.train()
    assert not small_model.encoder.training
    assert any(p.requires_grad for p in small_model.bridge.parameters())


def test_icnr_shuffle_starts_as_nearest_neighbour():
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(5, 4 * 3, 1, bias=False)
    unet.icnr_(conv.weight)
    x = torch.randn(1, 5, 6, 6)
    up = torch.nn.functional.pixel_shuffle(conv(x), 2)
    nearest = torch.nn.functional.interpolate(up[:, :, ::2, ::2], scale_factor=2, mode="nearest")
    torch.testing.assert_close(up, nearest)


def test_self_attention_starts_as_identity_and_mixes_positions():
    torch.manual_seed(2)
    sa = unet.SelfAttention(16)
    x = torch.randn(2, 16, 4, 5)
    torch.testing.assert_close(sa(x), x)
    with torch.no_grad():
        sa.gamma.fill_(1.0)
    y = sa(x)
    x2 = x.clone()
    x2[:, :, 0, 0] += 1.0
    assert not torch.allclose(sa(x2)[:, :, 3, 4], y[:, :, 3, 4])  # a far position feels the change


def test_weighted_loss_closed_form():
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.ones(1, 3, 2, 2)
    target[:, :, 0, 0] = 3.0  # error 3 at the face pixel, 1 elsewhere
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    # weights 10, 1, 1, 1 -> (10 * 3 + 3 * 1) / 13
    assert float(weighted_loss(pred, target, mask, "l1", 10.0)) == pytest.approx(33 / 13)
    assert float(weighted_loss(pred, target, mask, "mse", 10.0)) == pytest.approx((10 * 9 + 3) / 13)
    with pytest.raises(ValueError, match="loss"):
        weighted_loss(pred, target, mask, "huber", 10.0)


def test_one_step_lowers_the_loss():
    torch.manual_seed(3)
    torch.set_num_threads(1)
    model = unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM, spectral_norm=False).train()
    x = torch.randn(4, 3, 64, 64)
    target = x.clone()
    target[:, :, 16:48, 16:48] = 0.0  # "blur" the centre to its mean
    mask = torch.zeros(4, 64, 64)
    mask[:, 16:48, 16:48] = 1.0
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    before = weighted_loss(model(x), target, mask, "l1", 10.0)
    before.backward()
    opt.step()
    with torch.no_grad():  # same batch, same (train-mode) BatchNorm statistics
        after = weighted_loss(model(x), target, mask, "l1", 10.0)
    assert float(after) < float(before.detach())


def test_weights_round_trip(tmp_path, small_model):
    path = unet.save_weights(small_model, tmp_path / "u.pt", {"encoder": "mobilenet_v2"})
    loaded = unet.load_unet(path, encoder_weights=unet.RANDOM)
    for k, v in small_model.state_dict().items():
        if not k.startswith("encoder.") and v.is_floating_point():
            torch.testing.assert_close(loaded.state_dict()[k], v.half().float())
    with pytest.raises(FileNotFoundError, match="faceblur-train"):
        unet.load_unet(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a fourfold U-Net"):
        unet.load_unet(tmp_path / "bad.pt")


def test_normalise_round_trip_and_network_size():
    img = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(unet.denormalise(unet.normalise(img)), img)
    assert unet.network_size(480, 640, 256) == (192, 256)
    assert unet.network_size(320, 320, 320) == (320, 320)


class _Centre(torch.nn.Module):
    """A fake network that sets a centre square to 0 (normalised) and copies the rest."""

    def forward(self, x):
        y = x.clone()
        h, w = x.shape[-2:]
        y[:, :, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 0.0
        return y


def test_change_mask_compositing_keeps_background_exact():
    frame = np.random.default_rng(1).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    anon = unet.UNetAnonymizer(_Centre(), size=64)
    out, mask = anon.anonymize(frame)
    assert out.shape == frame.shape and mask.shape == frame.shape[:2]
    assert np.array_equal(out[~mask], frame[~mask])
    assert 0.15 < mask.mean() < 0.35 and not np.array_equal(out[mask], frame[mask])


def test_mask_head_gives_one_logit_per_pixel_and_starts_near_no_face():
    torch.manual_seed(4)
    model = unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM, head="mask").eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 96))
    assert logits.shape == (2, 1, 64, 96)
    assert float(torch.sigmoid(logits).mean()) < 0.2
    with pytest.raises(ValueError, match="head"):
        unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM, head="boxes")


def test_trainable_stages_train_weights_but_keep_imagenet_statistics():
    model = unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM, head="mask", trainable_stages=2)
    flags = [all(p.requires_grad for p in s.parameters()) for s in model.encoder.stages]
    assert flags == [False, False, False, True, True]
    model.train()
    assert not any(m.training for m in model.encoder.modules())  # BatchNorm statistics stay frozen
    assert model.encoder.trained_prefixes() == ("encoder.stages.3.", "encoder.stages.4.")
    with pytest.raises(ValueError, match="trainable_stages"):
        unet.Encoder("mobilenet_v2", unet.RANDOM, trainable_stages=6)


def test_mask_model_round_trip_keeps_trained_encoder_stages_and_settings(tmp_path):
    torch.manual_seed(5)
    config = {"encoder": "mobilenet_v2", "self_attention": True, "spectral_norm": False, "head": "mask",
              "trainable_stages": 1}  # fmt: skip
    model = unet.build_unet(**config, encoder_weights=unet.RANDOM)
    with torch.no_grad():
        model.encoder.stages[4][0].conv[0][0].weight.add_(0.5)  # as if training moved it
    settings = {"threshold": 0.6, "floor": 0.3, "min_area": 20, "size": 384}
    path = unet.save_weights(model, tmp_path / "m.pt", config, mask_settings=settings)
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert any(k.startswith("encoder.stages.4.") for k in saved)
    assert not any(k.startswith("encoder.stages.3.") for k in saved)  # frozen: rebuilt from its source
    # the frozen stages come from encoder_weights on load: the same random init here
    loaded = unet.load_unet(path, encoder_weights=unet.RANDOM)
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(5)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.encoder.stages[4][0].conv[0][0].weight,
            model.encoder.stages[4][0].conv[0][0].weight.half().float(),
        )
        assert loaded(x).shape == (1, 1, 64, 64)
    assert loaded.mask_settings.threshold == 0.6 and loaded.mask_settings.size == 384
    moved = unet.with_mask_settings(path, tmp_path / "c.pt", {**settings, "threshold": 0.7})
    assert unet.load_unet(moved, encoder_weights=unet.RANDOM).mask_settings.threshold == 0.7
    with pytest.raises(ValueError, match="floor < threshold"):
        unet.with_mask_settings(path, tmp_path / "bad.pt", {**settings, "threshold": 0.2})
    assert not (tmp_path / "bad.pt").exists()

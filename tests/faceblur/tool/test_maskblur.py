"""Approach 2's output for a face-mask U-Net: a perfect mask gives the default tool's output, everything
outside the mask stays bit-exact, and the tool picks the anonymiser by the network's head."""

import numpy as np
import pytest
import torch

from fourfold.faceblur.models import unet
from fourfold.faceblur.models.facemask import TOOL_MASK_SCALE, TOOL_SIGMA_RATIO, MaskSettings
from fourfold.faceblur.tool import pipeline
from fourfold.faceblur.tool.blur import blur_paper, ellipse_mask
from fourfold.faceblur.tool.maskblur import MaskBlurAnonymizer, composite_blur, unet_anonymizer


def noisy_frame(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_the_model_room_repeats_the_tools_defaults():
    assert TOOL_MASK_SCALE == pipeline.DEFAULT_MASK_SCALE
    assert TOOL_SIGMA_RATIO == pipeline.DEFAULT_SIGMA_RATIO


def test_a_perfect_mask_reproduces_the_default_tools_blur():
    frame = noisy_frame()
    box = np.array([[50.0, 30.0, 90.0, 80.0]])  # a 40 x 50 face
    teacher = ellipse_mask(frame.shape[:2], box, mask_scale=TOOL_MASK_SCALE)
    tool = blur_paper(frame, box, mask_scale=TOOL_MASK_SCALE, sigma_ratio=TOOL_SIGMA_RATIO, fast=True)
    out, changed = composite_blur(frame, teacher, MaskSettings())
    assert np.array_equal(changed, teacher > 0)
    inside = teacher > 0
    gap = np.abs(out.astype(int) - tool.astype(int))[inside]
    assert gap.mean() < 1.0 and np.percentile(gap, 99) <= 3  # same sigma; windows differ at the edges
    assert np.array_equal(out[~inside], frame[~inside])


def test_outside_the_kept_regions_the_frame_is_bit_exact():
    frame = noisy_frame(seed=1)
    prob = np.zeros(frame.shape[:2], np.float32)
    prob[20:60, 20:60] = 0.35  # support only: no core, not kept
    prob[80:110, 100:140] = 0.95  # kept
    prob[70:75, 10:15] = 0.95  # a core of 25 px, under min_area 30
    out, changed = composite_blur(frame, prob, MaskSettings(min_area=30))
    assert changed.sum() == 30 * 40 and changed[80:110, 100:140].all()
    assert np.array_equal(out[~changed], frame[~changed])
    assert out[80:110, 100:140].std() < 0.5 * frame[80:110, 100:140].std()  # blurred
    flat = np.full_like(frame, 77)
    flat_out = composite_blur(flat, prob, MaskSettings(min_area=30))[0]
    assert np.array_equal(flat_out, flat)  # the blur of a constant is that constant


@pytest.fixture(scope="module")
def mask_model():
    torch.manual_seed(0)
    return unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM, head="mask").eval()


def test_tool_runs_a_mask_model_through_its_mask_and_the_paper_model_as_before(mask_model):
    anonymizer = unet_anonymizer(mask_model)
    assert isinstance(anonymizer, MaskBlurAnonymizer) and anonymizer.size == MaskSettings().size
    assert unet_anonymizer(mask_model, 128).size == 128
    paper = unet.build_unet("mobilenet_v2", encoder_weights=unet.RANDOM)
    assert isinstance(unet_anonymizer(paper), unet.UNetAnonymizer) and unet_anonymizer(paper).size == 256
    with pytest.raises(ValueError, match="image-head"):
        unet.UNetAnonymizer(mask_model)


def test_a_model_that_sees_no_face_leaves_the_frame_untouched(mask_model):
    frame = noisy_frame(90, 130, seed=2)
    with torch.no_grad():
        mask_model.mask_head[-1].bias.fill_(-30.0)  # p ~ 0 everywhere
    out, changed = MaskBlurAnonymizer(mask_model, size=128).anonymize(frame)
    assert not changed.any() and np.array_equal(out, frame)
    with torch.no_grad():
        mask_model.mask_head[-1].bias.fill_(30.0)  # p ~ 1 everywhere: one region, the whole frame
    out, changed = MaskBlurAnonymizer(mask_model, size=128).anonymize(frame)
    assert changed.all() and out.std() < frame.std()
    with torch.no_grad():
        mask_model.mask_head[-1].bias.fill_(-4.0)

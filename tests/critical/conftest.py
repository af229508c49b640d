"""Shared settings of the critical tests."""

import pytest
import torch


@pytest.fixture
def trainer_cfg():
    """Lightning Trainer kwargs for quiet, single-thread CPU test runs."""
    torch.set_num_threads(1)
    return {
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 1,
        "deterministic": "warn",
    }

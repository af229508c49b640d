"""Two Deep Learning Solutions for Automatic Blurring of Faces in Videos (Plaud & Lisani, 2024).

Approach 1: a face detector (YOLO trained here, or CenterFace) whose boxes are blurred. Approach 2: a U-Net
that outputs the frame with its faces blurred. The rooms, each importing only the rooms listed before it
(``tests/faceblur/test_rooms.py`` enforces it; see ``README.md`` here for the module map):

- ``models/``: the two networks (``unet``, ``yolo``) and safe weight-file reading;
- ``tool/``: what ``fourfold-blur`` runs (``cli``, ``pipeline``, ``video``, ``detectors``, ``blur``);
- ``data/``: what the models learn from (synthetic composites, real stills, annotation formats);
- ``evaluation/``: how the methods are measured (real-photo set, metrics, identity, threshold calibration);
- here: the experiment (``run``, the only module reading the config), ``lit`` (U-Net training glue),
  ``report`` (tables and figures) and ``bench`` (speed against deface); ``weights/`` and ``resources/``
  hold the packaged weights and the committed manifests.
"""

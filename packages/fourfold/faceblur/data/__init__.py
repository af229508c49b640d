"""What the models learn from: ``synthetic`` (generated composites and clips), ``realsources`` (real photos
and video frames that packages ship, pseudo-labelled), ``realstills`` (training stills made from them),
``maskstills`` (the face-mask U-Net's stills and teacher targets), ``hardnegatives`` (false detections to
train away) and ``formats`` (WIDER FACE, FDDB, YOLO labels, U-Net triplets). Imports ``tool`` and
``models`` only."""

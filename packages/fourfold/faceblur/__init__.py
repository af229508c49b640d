"""Two Deep Learning Solutions for Automatic Blurring of Faces in Videos (Plaud & Lisani, 2024).

Approach 1: a face detector (YOLO trained here, or CenterFace) whose boxes are blurred (``blur``).
Approach 2: a U-Net that outputs the frame with its faces blurred (``unet``). ``video`` and ``cli`` turn
both into a tool (``fourfold-blur``); ``run`` is the experiment, ``report`` its tables and figures.
"""

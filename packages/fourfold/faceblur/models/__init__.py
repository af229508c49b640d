"""The two networks: approach 1's YOLO face detector (``yolo``) and approach 2's U-Net (``unet``; its
face-mask losses and regions in ``facemask``), with ``weightfiles`` reading their tensor-dict weight files
safely. Imports no other faceblur room."""

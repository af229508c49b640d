"""fourfold: four machine-learning papers reproduced as tools.

Subpackages: ``scoring``, ``hierarchical``, ``critical``, ``faceblur`` (one per paper, siblings that never
import each other) and ``core`` (the Hydra entry point, the Lightning loop, run folders and report helpers).
"""

__version__ = "0.1.0"

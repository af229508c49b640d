"""fourfold.critical: "Ignore the KL Penalty! Boosting Exploration on Critical Tokens to Enhance RL
Fine-Tuning" (Vassoyan, Beau, Plaud, NAACL Findings 2025).

Public API: ``scratchpad(a, b)`` (the target text), ``parse_result(text)``, ``certainty(probs, kind)`` and
``kl_weight(ref_logits, beta, kind=...)``. Run it with ``python -m fourfold experiment=critical/quick``.
"""

from fourfold.critical.arithmetic import parse_result, scratchpad
from fourfold.critical.kl import certainty, kl_weight

__all__ = ["certainty", "kl_weight", "parse_result", "scratchpad"]

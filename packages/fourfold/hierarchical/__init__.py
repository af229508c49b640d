"""To Each Metric Its Decoding (Plaud et al., ICML 2025): Bayes-optimal decoding of a probabilistic
hierarchical classifier for each hierarchical metric.

    from fourfold.hierarchical import Hierarchy, decode, score
    tree = Hierarchy.shipped("tieredimagenet_h")
    pred = decode(probs, tree, "hF_1")            # (examples, nodes) boolean node indicator
    score(pred, labels, tree, "hF_1")
"""

from fourfold.hierarchical.decision import RULES, decode, score
from fourfold.hierarchical.metrics import BASE_METRICS, get_metric, leaf_cost_metric, node_cost_metric
from fourfold.hierarchical.tree import Hierarchy, TreeError, random_tree

__all__ = [
    "BASE_METRICS",
    "RULES",
    "Hierarchy",
    "TreeError",
    "decode",
    "get_metric",
    "leaf_cost_metric",
    "node_cost_metric",
    "random_tree",
    "score",
]

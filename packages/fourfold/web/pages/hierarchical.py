"""The hierarchical page: decode uploaded (or the shipped AlexNet) probabilities for a metric on a shipped
or uploaded tree; with labels, score the Bayes-optimal decoder against every heuristic. A decoded node set
is shown as its chains: one per deepest node of the set, from that node up through its ancestors in the
set, so a set that spans two branches reads as two chains."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourfold.hierarchical import BASE_METRICS, RULES, Hierarchy, TreeError, decode, get_metric, score
from fourfold.web.uploads import UploadError, read_matrix

SHIPPED_TREES = ("tieredimagenet_h", "inat19")
MAX_EXAMPLES = 20_000
SHOWN_EXAMPLES = 25  # decoded node sets listed on the page
SHOWN_CHAINS = 4  # chains listed per decoded set
SHOWN_NODES = 8  # nodes listed per chain


@dataclass
class RuleScore:
    rule: str
    value: float | None
    note: str = ""  # why a rule has no value (a leaf metric scoring a heuristic that stops at a node)


@dataclass
class DecodedExample:
    index: int
    chains: list[list[str]]  # each from a deepest node of the set up through its ancestors in the set
    n_nodes: int
    n_chains: int
    label: str | None


def chains(tree: Hierarchy, members: np.ndarray) -> list[list[int]]:
    """The chains of a node set: for every member with no child in the set (deepest first, then by index),
    that node followed by its ancestors that are members, nearest first. Every member is in some chain."""
    inside = set(int(n) for n in members)
    tips = [n for n in inside if not any(c in inside for c in tree.children[n])]
    out = []
    for tip in sorted(tips, key=lambda n: (-int(tree.depth[n]), n)):
        chain, node = [tip], int(tree.parent[tip])
        while node >= 0:
            if node in inside:
                chain.append(node)
            node = int(tree.parent[node])
        out.append(chain)
    return out


def page_wording(err: Exception) -> str:
    """A library message for the page: its "pass normalize=True / logits=True" advice becomes the form's."""
    text = str(err)
    advice = re.search(r";\s*pass\b.*$", text)
    if advice is None:
        return text
    return (
        text[: advice.start()] + "; tick 'these are logits' for raw scores, or rescale each row to sum to 1"
    )


@dataclass
class HierarchicalResult:
    tree: str
    metric: str
    higher_is_better: bool
    n_examples: int
    n_leaves: int
    examples: list[DecodedExample]
    scores: list[RuleScore]
    source: str


def load_tree(shipped: str, uploaded: Path | None) -> tuple[Hierarchy, str]:
    if uploaded is not None:
        try:
            return Hierarchy.from_json(uploaded), "your tree"
        except (TreeError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise UploadError(
                f'tree JSON: {err}; expected {{"children": {{parent: [children, ...]}}}}'
            ) from err
    if shipped not in SHIPPED_TREES:
        raise UploadError(f"unknown tree {shipped!r}; choose one of {', '.join(SHIPPED_TREES)}")
    return Hierarchy.shipped(shipped), shipped


def check_metric(metric: str) -> str:
    if metric not in BASE_METRICS:
        raise UploadError(f"unknown metric {metric!r}; choose one of {', '.join(BASE_METRICS)}")
    return metric


def read_labels(path: Path, n_examples: int, n_leaves: int) -> np.ndarray:
    raw = read_matrix(path, what="labels").ravel()
    if len(raw) != n_examples:
        raise UploadError(f"labels: {len(raw)} labels for {n_examples} examples; give one leaf index per row")
    if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)) or raw.min() < 0 or raw.max() >= n_leaves:
        raise UploadError(f"labels must be integer leaf indices in 0..{n_leaves - 1}")
    return raw.astype(np.int64)


def decode_and_score(
    tree: Hierarchy,
    tree_name: str,
    scores_in: np.ndarray,
    metric: str,
    *,
    logits: bool,
    labels: np.ndarray | None,
    source: str,
) -> HierarchicalResult:
    """Decode (B, L) probabilities (or logits) for ``metric``; with labels, every rule's mean score."""
    check_metric(metric)
    if scores_in.ndim != 2 or scores_in.shape[1] != tree.n_leaves:
        raise UploadError(
            f"probabilities must be a matrix (examples, {tree.n_leaves}) with one column per leaf of "
            f"{tree_name}; got shape {scores_in.shape}"
        )
    if len(scores_in) > MAX_EXAMPLES:
        raise UploadError(f"{len(scores_in)} examples is over the page's limit of {MAX_EXAMPLES}")
    try:
        predictions = decode(scores_in, tree, metric, logits=logits)
    except ValueError as err:
        raise UploadError(f"probabilities: {page_wording(err)}") from err
    names = np.asarray(tree.names)
    examples = []
    for i in range(min(SHOWN_EXAMPLES, len(predictions))):
        members = np.flatnonzero(predictions[i])
        found = chains(tree, members)
        shown = [[str(names[n]) for n in chain[:SHOWN_NODES]] for chain in found[:SHOWN_CHAINS]]
        label = None if labels is None else str(names[labels[i]])
        examples.append(DecodedExample(i, shown, len(members), len(found), label))
    rule_scores = []
    if labels is not None:
        for rule in RULES:
            try:
                pred = (
                    predictions if rule == "optimal" else decode(scores_in, tree, metric, rule, logits=logits)
                )
                rule_scores.append(RuleScore(rule, score(pred, labels, tree, metric)))
            except ValueError as err:
                rule_scores.append(RuleScore(rule, None, str(err).split(";")[0]))
    return HierarchicalResult(
        tree=tree_name,
        metric=metric,
        higher_is_better=get_metric(metric, tree).higher_is_better,
        n_examples=len(predictions),
        n_leaves=tree.n_leaves,
        examples=examples,
        scores=rule_scores,
        source=source,
    )


def alexnet_example(metric: str) -> HierarchicalResult:
    """The authors' AlexNet logits on tieredImageNet-H (608 images, shipped), softmax at T = 1."""
    from fourfold.hierarchical.data import alexnet_logits

    logits, labels = alexnet_logits()
    tree = Hierarchy.shipped("tieredimagenet_h")
    return decode_and_score(
        tree,
        "tieredimagenet_h",
        logits,
        metric,
        logits=True,
        labels=labels,
        source="the shipped AlexNet logits (608 tieredImageNet-H images, softmax at T = 1)",
    )

"""A validated rooted tree over a classifier's leaves, indexed leaves first.

Nodes are integers ``0..N-1``: the ``L`` leaves come first (``0..L-1``, matching the columns of a
probability matrix), internal nodes follow. The root may sit anywhere among the internal nodes (719 in
tieredImageNet-H). Every array below is indexed by node.
"""

import json
from collections.abc import Hashable, Mapping, Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.sparse as sp

SHIPPED = {"tieredimagenet_h": "tieredimagenet_h_hierarchy.json", "inat19": "inat19_hierarchy.json"}


class TreeError(ValueError):
    """A graph that is not a usable hierarchy; the message names the offending node."""


class Hierarchy:
    """A rooted tree, leaves first.

    Build it with ``Hierarchy.from_children``, ``from_networkx``, ``from_json`` or ``shipped``.

    Attributes (all numpy arrays of length N unless said otherwise):
        parent: parent index, -1 at the root.  depth: d(n), 0 at the root.
        max_leaf_depth: D(n), deepest leaf below n.  n_leaves_below: |L(n)|.
        depth1_ancestor: a(n), the ancestor at depth 1 (the root maps to itself).
        ic: log(L / |L(n)|) (Zhao).  ic2: log2(L / |L(n)|) (heuristics).
        incidence: sparse CSR (L, N), E[l, n] = 1 iff n is on the root path of leaf l.
    """

    def __init__(
        self, children: Mapping[int, Sequence[int]], n_nodes: int, names: Sequence[str] | None = None
    ):
        self.n_nodes = int(n_nodes)
        self.children = [list(map(int, children.get(n, ()))) for n in range(self.n_nodes)]
        self.names = list(names) if names is not None else [str(n) for n in range(self.n_nodes)]
        self._validate()

    # ----------------------------------------------------------------------------------- construction
    @classmethod
    def from_children(cls, children: Mapping[Hashable, Sequence[Hashable]]) -> "Hierarchy":
        """From a parent -> children mapping.

        Integer labels that already put the leaves at ``0..L-1`` keep their indices; any other labels
        (strings, unordered integers) are renumbered: leaves in sorted order, then internal nodes.
        """
        if not isinstance(children, Mapping) or not children:
            raise TreeError("children must be a non-empty mapping parent -> list of children")
        nodes = set(children)
        for parent, kids in children.items():
            if isinstance(kids, str | bytes) or not isinstance(kids, Sequence | set | frozenset | tuple):
                raise TreeError(f"children of node {parent!r} must be a list of nodes, got {kids!r}")
            nodes.update(kids)
        internal = {p for p, kids in children.items() if len(kids) > 0}
        leaves = nodes - internal
        if all(isinstance(n, int | np.integer) and not isinstance(n, bool) for n in nodes):
            ints = {int(n) for n in nodes}
            if ints == set(range(len(ints))) and {int(n) for n in leaves} == set(range(len(leaves))):
                kids = {int(p): [int(c) for c in cs] for p, cs in children.items()}
                return cls(kids, len(ints))
            if ints == set(range(len(ints))):
                bad = min(int(n) for n in leaves if int(n) >= len(leaves))
                raise TreeError(
                    f"node {bad} is a leaf but has an index >= the number of leaves ({len(leaves)}): "
                    "leaves must come first (0..L-1) to match probability columns; pass string labels "
                    "to have the nodes renumbered"
                )
        order = sorted(leaves, key=str) + sorted(internal, key=str)
        index = {node: i for i, node in enumerate(order)}
        kids = {index[p]: [index[c] for c in cs] for p, cs in children.items()}
        return cls(kids, len(order), names=[str(n) for n in order])

    @classmethod
    def from_networkx(cls, graph) -> "Hierarchy":
        """From a networkx DiGraph with parent -> child edges (an arborescence)."""
        import networkx as nx

        if not isinstance(graph, nx.DiGraph):
            raise TreeError("pass a networkx DiGraph with edges parent -> child")
        if graph.number_of_nodes() == 0:
            raise TreeError("the graph has no node")
        if not nx.is_arborescence(graph):
            multi = [n for n in graph.nodes if graph.in_degree(n) > 1]
            if multi:
                raise TreeError(f"node {multi[0]!r} has {graph.in_degree(multi[0])} parents: not a tree")
            roots = [n for n in graph.nodes if graph.in_degree(n) == 0]
            raise TreeError(f"the graph is not a rooted tree (roots: {roots[:5]!r}); it has a cycle or parts")
        return cls.from_children({n: list(graph.successors(n)) for n in graph.nodes})

    @classmethod
    def from_json(cls, path: str | Path) -> "Hierarchy":
        """From a JSON file with ``children`` (parent -> child indices, keys may be strings), optionally
        ``n_nodes``, ``n_leaves``, ``root`` (checked) and ``idx_to_name`` (node names)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"hierarchy file {path} does not exist")
        data = json.loads(path.read_text(encoding="utf-8"))
        if "children" not in data:
            raise TreeError(f"{path}: no 'children' key (expected parent -> list of child indices)")
        raw = data["children"]
        try:
            children = {int(p): [int(c) for c in cs] for p, cs in raw.items()}
        except (TypeError, ValueError):
            children = dict(raw)
        tree = cls.from_children(children)
        for key, value in (("n_nodes", tree.n_nodes), ("n_leaves", tree.n_leaves), ("root", tree.root)):
            if key in data and int(data[key]) != value:
                raise TreeError(f"{path}: '{key}' says {data[key]} but the children map gives {value}")
        if "idx_to_name" in data:
            names = {int(k): v for k, v in data["idx_to_name"].items()}
            tree.names = [names.get(n, str(n)) for n in range(tree.n_nodes)]
        return tree

    @classmethod
    def shipped(cls, name: str) -> "Hierarchy":
        """One of the trees shipped with the package: ``tieredimagenet_h`` or ``inat19``."""
        if name not in SHIPPED:
            raise KeyError(f"unknown shipped hierarchy {name!r}; choose one of {sorted(SHIPPED)}")
        with resources.as_file(resources.files("fourfold.hierarchical") / "resources" / SHIPPED[name]) as p:
            return cls.from_json(p)

    @classmethod
    def load(cls, spec: "str | Path | Hierarchy") -> "Hierarchy":
        """A shipped tree name, a JSON path, or a Hierarchy (returned as is)."""
        if isinstance(spec, Hierarchy):
            return spec
        if str(spec) in SHIPPED:
            return cls.shipped(str(spec))
        return cls.from_json(spec)

    # ------------------------------------------------------------------------------------- validation
    def _validate(self) -> None:
        n = self.n_nodes
        parent = np.full(n, -1, dtype=np.int64)
        for p, kids in enumerate(self.children):
            for c in kids:
                if not 0 <= c < n:
                    raise TreeError(f"node {p} has child {c}, outside 0..{n - 1}")
                if c == p:
                    raise TreeError(f"node {p} is its own child")
                if parent[c] != -1:
                    raise TreeError(f"node {c} has two parents ({parent[c]} and {p}): not a tree")
                parent[c] = p
        roots = np.flatnonzero(parent == -1)
        if len(roots) != 1:
            raise TreeError(
                f"a tree has exactly one root (a node without parent); found {len(roots)}: "
                f"{roots[:10].tolist()}"
            )
        self.root = int(roots[0])
        # Breadth-first from the root: every node must be reached (a cycle leaves nodes unreached).
        order, depth = [self.root], np.full(n, -1, dtype=np.int64)
        depth[self.root] = 0
        for node in order:
            for c in self.children[node]:
                depth[c] = depth[node] + 1
                order.append(c)
        if len(order) != n:
            unreached = np.flatnonzero(depth < 0)
            raise TreeError(f"node {unreached[0]} is not reachable from the root {self.root} (a cycle?)")
        is_leaf = np.array([len(k) == 0 for k in self.children])
        self.n_leaves = int(is_leaf.sum())
        if not is_leaf[: self.n_leaves].all():
            bad = int(np.flatnonzero(~is_leaf[: self.n_leaves])[0])
            raise TreeError(
                f"node {bad} has children but sits among the first {self.n_leaves} indices, "
                "which are reserved for leaves (leaves first)"
            )
        if self.n_leaves < 2:
            raise TreeError("a hierarchy needs at least two leaves")
        self.parent, self.depth, self.bfs_order = parent, depth, np.array(order)

    # ----------------------------------------------------------------------------------- derived arrays
    @property
    def leaves(self) -> np.ndarray:
        return np.arange(self.n_leaves)

    @cached_property
    def path_matrix(self) -> sp.csr_matrix:
        """Sparse (N, N): row n marks the nodes on the root -> n path, both ends included."""
        rows, cols = [], []
        for n in range(self.n_nodes):
            m = n
            while m != -1:
                rows.append(n)
                cols.append(m)
                m = self.parent[m]
        data = np.ones(len(rows), dtype=np.float64)
        mat = sp.csr_matrix((data, (rows, cols)), shape=(self.n_nodes, self.n_nodes))
        mat.sort_indices()
        return mat

    @cached_property
    def incidence(self) -> sp.csr_matrix:
        """E, sparse (L, N): E[l, n] = 1 iff n is on the root path of leaf l (|Y(l)| = d(l) + 1)."""
        return self.path_matrix[: self.n_leaves].tocsr()

    @cached_property
    def incidence_t(self) -> sp.csr_matrix:
        """E transposed (N, L), CSR with sorted leaf indices: the sum over L(n) runs in leaf order, so a
        node's float sum is never below a descendant's (monotone rounding)."""
        mat = self.incidence.T.tocsr()
        mat.sort_indices()
        return mat

    @cached_property
    def n_leaves_below(self) -> np.ndarray:
        return np.asarray(self.incidence.sum(axis=0)).ravel().astype(np.int64)

    @cached_property
    def max_leaf_depth(self) -> np.ndarray:
        """D(n) = max over leaves l below n of d(l)."""
        out = np.zeros(self.n_nodes, dtype=np.int64)
        for n in self.bfs_order[::-1]:
            if self.children[n]:
                out[n] = max(out[c] for c in self.children[n])
            else:
                out[n] = self.depth[n]
        return out

    @property
    def max_depth(self) -> int:
        return int(self.depth[: self.n_leaves].max())

    @cached_property
    def depth1_ancestor(self) -> np.ndarray:
        return self.ancestors_at_depth[:, 1].clip(min=0) * (self.depth >= 1) + self.root * (self.depth == 0)

    @cached_property
    def ancestors_at_depth(self) -> np.ndarray:
        """(N, D_max + 1): the ancestor of n at each depth, -1 below n's own depth."""
        out = np.full((self.n_nodes, self.max_depth + 1), -1, dtype=np.int64)
        for n in self.bfs_order:
            if n != self.root:
                out[n] = out[self.parent[n]]
            out[n, self.depth[n]] = n
        return out

    @cached_property
    def ic(self) -> np.ndarray:
        """Information content log(L / |L(n)|): 0 at the root, log L at the leaves."""
        return np.log(self.n_leaves / self.n_leaves_below)

    @cached_property
    def ic2(self) -> np.ndarray:
        return np.log2(self.n_leaves / self.n_leaves_below)

    @cached_property
    def lca_depth(self) -> np.ndarray:
        """(N, L) int: depth of LCA(n, l) = |path(n) ∩ path(l)| - 1."""
        shared = (self.path_matrix @ self.incidence.T).toarray()
        return shared.astype(np.int64) - 1

    @cached_property
    def lca(self) -> np.ndarray:
        """(N, L) int: the node LCA(n, l)."""
        return np.take_along_axis(self.ancestors_at_depth, self.lca_depth, axis=1)

    @cached_property
    def children_table(self) -> np.ndarray:
        """(N, max branching) child indices padded with -1."""
        width = max(len(c) for c in self.children)
        table = np.full((self.n_nodes, width), -1, dtype=np.int64)
        for n, kids in enumerate(self.children):
            table[n, : len(kids)] = kids
        return table

    @cached_property
    def child_to_parent(self) -> sp.csr_matrix:
        """Sparse (N, N) with [c, parent(c)] = 1 for every non-root c."""
        c = np.flatnonzero(self.parent >= 0)
        return sp.csr_matrix((np.ones(len(c)), (c, self.parent[c])), shape=(self.n_nodes, self.n_nodes))

    def node_probs(self, leaf_probs: np.ndarray) -> np.ndarray:
        """Marginals p(n) = sum of p(l) over the leaves below n; (B, L) -> (B, N)."""
        return np.asarray(self.incidence_t @ np.asarray(leaf_probs, dtype=np.float64).T).T

    @cached_property
    def dense_paths(self) -> np.ndarray:
        """Boolean (N, N) ``path_matrix``: row n marks the root -> n path (N^2 bytes, built once)."""
        return self.path_matrix.toarray().astype(bool)

    def paths(self, nodes: np.ndarray) -> np.ndarray:
        """Boolean (B, N) indicators of the root paths of ``nodes`` (B,)."""
        return np.take(self.dense_paths, np.asarray(nodes, dtype=np.int64), axis=0)  # 5x fancy indexing

    def to_networkx(self):
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(range(self.n_nodes))
        graph.add_edges_from((p, c) for p, kids in enumerate(self.children) for c in kids)
        return graph

    def __repr__(self) -> str:
        return (
            f"Hierarchy(n_nodes={self.n_nodes}, n_leaves={self.n_leaves}, root={self.root}, "
            f"max_depth={self.max_depth})"
        )


def random_tree(
    n_nodes: int,
    rng: np.random.Generator,
    *,
    balanced: bool = False,
    max_children: int = 3,
    single_child: bool = True,
) -> Hierarchy:
    """A seeded random tree with at least ``n_nodes`` nodes (about that many), leaves first.

    ``balanced`` grows whole levels, so every leaf has the same depth; otherwise each new node hangs
    under a random earlier node (unbalanced depths). ``single_child=False`` gives every internal node
    at least two children. Labels are random strings, so the root lands at a random internal index.
    """
    lo = 1 if single_child else 2
    kids: dict[int, list[int]] = {}
    count = 1
    if balanced:
        frontier = [0]
        while count < n_nodes:
            new = []
            for p in frontier:
                for _ in range(int(rng.integers(2 if p == 0 else lo, max_children + 1))):
                    kids.setdefault(p, []).append(count)
                    new.append(count)
                    count += 1
            frontier = new
    else:
        while count < max(n_nodes, 3):
            open_nodes = [p for p in range(count) if 0 < len(kids.get(p, [])) < max_children or p not in kids]
            p = int(rng.choice(open_nodes))
            width = (2 if p == 0 else lo) if p not in kids else 1  # the root branches: >= 2 leaves
            for _ in range(width):
                kids.setdefault(p, []).append(count)
                count += 1
    labels = {n: f"v{int(rng.integers(10**9)):09d}_{n}" for n in range(count)}
    return Hierarchy.from_children({labels[p]: [labels[c] for c in cs] for p, cs in kids.items()})

"""A hand-drawn tree shared by the tests.

        root(8)
       /       \\
     A(5)      B(7)
    /   \\     /    \\
  a1(0) a2(1) b1(2)  C(6)
                    /   \\
                 c1(3)  c2(4)
"""

from fourfold.hierarchical.tree import Hierarchy

CHILDREN = {8: [5, 7], 5: [0, 1], 7: [2, 6], 6: [3, 4]}


def toy() -> Hierarchy:
    return Hierarchy.from_children(CHILDREN)

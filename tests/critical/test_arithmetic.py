"""The scratchpad format (worked example, quirks, sizes), samplers, parser, rewards, critical positions."""

import numpy as np
import pytest

from fourfold.critical import parse_result, scratchpad
from fourfold.critical.arithmetic import (
    critical_positions,
    eval_pairs,
    is_correct,
    max_continuation_length,
    pretrain_pairs,
    prompt,
    reward,
    rl_pairs,
    scratchpad_lines,
)

WORKED_EXAMPLE = """Input:
128+367
Target:
<scratch>
[1,2,8] + [3,6,7] , A=[] , C=0 , 8+7+0=15 , A->5 , C->1
[1,2] + [3,6] , A=[5] , C=1 , 2+6+1=9 , A->9 , C->0
[1] + [3] , A=[9,5] , C=0 , 1+3+0=4 , A->4 , C->0
[] + [] , A=[4,9,5] C=0 , END
</scratch>
4 9 5
"""


def test_worked_example_is_reproduced_exactly():
    assert prompt(128, 367) + scratchpad(128, 367) == WORKED_EXAMPLE
    assert not prompt(128, 367).endswith("\n")


def test_final_carry_is_prepended():
    text = scratchpad(999, 999)
    assert text.endswith("</scratch>\n1 9 9 8\n")
    assert "[] + [] , A=[9,9,8] C=1 , END" in text


def test_unequal_lengths_pad_the_short_operand_with_zero():
    lines = scratchpad_lines(12, 3456)
    assert lines[2] == "[] + [3,4] , A=[6,8] , C=0 , 0+4+0=4 , A->4 , C->0"
    assert lines[-1] == "[] + [] , A=[3,4,6,8] C=0 , END"


def test_continuation_sizes_match_the_brief():
    nines = [len(scratchpad(10**d - 1, 10**d - 1)) for d in (3, 4, 5, 7, 8)]
    assert nines == [220, 289, 364, 532, 625]
    assert max_continuation_length(3) == 320


@pytest.mark.parametrize("seed", range(3))
def test_random_pairs_satisfy_invariants(seed):
    rng = np.random.default_rng(seed)
    for a, b in pretrain_pairs(rng, 200, 4, 0.1):
        text = scratchpad(a, b)
        assert parse_result(text).replace(" ", "") == str(a + b)  # the result line is a+b
        assert len(scratchpad_lines(a, b)) == max(len(str(a)), len(str(b))) + 1
        assert "C=" in text and text.count("\n") == len(scratchpad_lines(a, b)) + 4
        # every line's digit sum is correct arithmetic
        for line in scratchpad_lines(a, b)[:-1]:
            expr = line.split(" , ")[3]
            lhs, rhs = expr.split("=")
            assert sum(int(x) for x in lhs.split("+")) == int(rhs)


def test_parser_and_rewards():
    good = scratchpad(128, 367)
    assert parse_result(good) == "4 9 5" and is_correct(good, 128, 367)
    assert parse_result("\n<scratch>\n...\n</scratch>\n4 9 5") is None  # the result line is not closed
    assert parse_result("no scratchpad") is None
    assert not is_correct(good.replace("4 9 5", "4 9 6"), 128, 367)
    assert not is_correct(good.replace("4 9 5", "495"), 128, 367)
    assert reward([True, False]).tolist() == [1.0, 0.0]
    assert reward([True, False], "ternary").tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match="binary"):
        reward([True], "shaped")


def test_samplers_respect_lengths():
    rng = np.random.default_rng(0)
    lengths = np.array([[len(str(a)), len(str(b))] for a, b in pretrain_pairs(rng, 4000, 3, 0.0)])
    assert lengths.max() == 3 and set(np.unique(lengths)) == {1, 2, 3}
    assert np.abs(np.bincount(lengths.ravel())[1:] / lengths.size - 1 / 3).max() < 0.03  # balanced
    mixed = pretrain_pairs(rng, 4000, 3, 0.05)
    share = np.mean([max(len(str(a)), len(str(b))) == 4 for a, b in mixed])
    assert 0.03 < share < 0.07
    for a, b in rl_pairs(rng, 500, 3, 2):
        longest, shortest = sorted((len(str(a)), len(str(b))), reverse=True)
        assert longest == 5 and 1 <= shortest <= 5
    for a, b in eval_pairs(rng, 200, 4, "identical"):
        assert len(str(a)) == len(str(b)) == 4
    for a, b in eval_pairs(rng, 200, 4, "varying"):
        assert max(len(str(a)), len(str(b))) == 4 and min(len(str(a)), len(str(b))) < 4
    with pytest.raises(ValueError, match="N"):
        pretrain_pairs(rng, 1, 0)


def test_critical_positions_point_at_the_extra_digits_of_each_long_list():
    a, b = 1234, 56
    text = scratchpad(a, b)
    found = critical_positions(a, b, n_digits=3)
    assert [(p.step, p.operand, p.char) for p in found] == [
        (1, 1, ","),
        (1, 1, "4"),
        (2, 1, ","),
        (2, 1, "3"),
        (3, 1, ","),
        (3, 1, "2"),
    ]
    for p in found:
        assert text[p.offset] == p.char
        assert text[p.offset + 2] == "]" or text[p.offset + 1] == "]"
    assert critical_positions(123, 45, n_digits=3) == []  # nothing longer than N
    both = critical_positions(12345, 67890, n_digits=3)  # gap 2 on both operands: 4 characters each
    assert len([p for p in both if p.step == 1]) == 8


def test_both_long_mix_shares_match_their_fractions():
    from fourfold.critical.arithmetic import operand_case

    n = 2
    pairs = pretrain_pairs(np.random.default_rng(0), 20000, n, mix_fraction=0.2, both_fraction=0.5)
    cases = [operand_case(a, b, n) for a, b in pairs]
    assert cases.count("both_long") / len(cases) == pytest.approx(0.1, abs=0.01)
    assert cases.count("one_long") / len(cases) == pytest.approx(0.1, abs=0.01)
    assert all(max(len(str(a)), len(str(b))) <= n + 1 for a, b in pairs)
    # both_fraction = 0 keeps the one-long-operand mix's draws exactly
    legacy = pretrain_pairs(np.random.default_rng(1), 500, 3, 0.3)
    assert legacy == pretrain_pairs(np.random.default_rng(1), 500, 3, 0.3, both_fraction=0.0)
    assert all(operand_case(a, b, 3) != "both_long" for a, b in legacy)


def test_operand_case_labels():
    from fourfold.critical.arithmetic import operand_case

    assert [operand_case(*p, 2) for p in ((12, 3), (123, 4), (5, 678), (123, 456))] == [
        "short", "one_long", "one_long", "both_long"]  # fmt: skip

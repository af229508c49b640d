"""Scratchpad addition: the exact prompt/target format, operand samplers, result check, rewards and the
locator of critical positions (diagnostics only).

Format (Lee et al. 2024 minus the "has k digits" lines), for 128+367::

    Input:
    128+367
    Target:            <- the prompt ends here, no trailing newline
    <scratch>
    [1,2,8] + [3,6,7] , A=[] , C=0 , 8+7+0=15 , A->5 , C->1
    ...
    [] + [] , A=[4,9,5] C=0 , END     <- no comma before C= on the last line
    </scratch>
    4 9 5
"""

from dataclasses import dataclass

import numpy as np

SCRATCH_OPEN = "<scratch>"
SCRATCH_CLOSE = "</scratch>"
LENGTH_SLACK = 100  # episodes stop at the continuation length of 9...9+9...9 plus this many characters


def prompt(a: int, b: int) -> str:
    """The zero-shot prompt ``Input:\\n<a>+<b>\\nTarget:`` (no trailing newline)."""
    _check_operands(a, b)
    return f"Input:\n{a}+{b}\nTarget:"


def _digits(x: int) -> list[int]:
    return [int(c) for c in str(x)]


def _list(digits: list[int]) -> str:
    return "[" + ",".join(str(d) for d in digits) + "]"


def _check_operands(a: int, b: int) -> None:
    for name, x in (("a", a), ("b", b)):
        if isinstance(x, bool) or not isinstance(x, int | np.integer) or x < 0:
            raise ValueError(f"operand {name} must be a non-negative integer, got {x!r}")


def scratchpad_lines(a: int, b: int) -> list[str]:
    """The decomposition lines, one per digit of the longer operand, then the END line."""
    _check_operands(a, b)
    left, right = _digits(int(a)), _digits(int(b))
    acc: list[int] = []
    carry = 0
    lines = []
    while left or right:
        x = left[-1] if left else 0  # an exhausted operand contributes 0
        y = right[-1] if right else 0
        total = x + y + carry
        digit, new_carry = total % 10, total // 10
        lines.append(
            f"{_list(left)} + {_list(right)} , A={_list(acc)} , C={carry} , "
            f"{x}+{y}+{carry}={total} , A->{digit} , C->{new_carry}"
        )
        acc.insert(0, digit)
        carry = new_carry
        left, right = left[:-1], right[:-1]
    lines.append(f"[] + [] , A={_list(acc)} C={carry} , END")  # the quirk: no comma before C=
    return lines


def spaced_sum(a: int, b: int) -> str:
    """The expected result line: the digits of a+b separated by single spaces."""
    return " ".join(str(a + b))


def scratchpad(a: int, b: int) -> str:
    """The target continuation of ``prompt(a, b)``: ``\\n<scratch>\\n``, the lines, ``</scratch>\\n``,
    the spaced result and a final ``\\n``."""
    body = "\n".join(scratchpad_lines(a, b))
    return f"\n{SCRATCH_OPEN}\n{body}\n{SCRATCH_CLOSE}\n{spaced_sum(a, b)}\n"


def max_continuation_length(digits: int) -> int:
    """The episode length limit for operands of up to ``digits`` digits (continuation of 9..9+9..9 + 100)."""
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    nines = 10**digits - 1
    return len(scratchpad(nines, nines)) + LENGTH_SLACK


def parse_result(text: str) -> str | None:
    """The text between ``</scratch>\\n`` and the next ``\\n`` (None when either is missing)."""
    marker = SCRATCH_CLOSE + "\n"
    start = text.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = text.find("\n", start)
    return None if end < 0 else text[start:end]


def is_correct(text: str, a: int, b: int) -> bool:
    """Whether a generated continuation ends with the right spaced sum."""
    return parse_result(text) == spaced_sum(a, b)


def reward(correct, kind: str = "binary"):
    """Terminal reward: ``binary`` 1/0 (the paper), ``ternary`` +1/-1 (the authors' training code)."""
    correct = np.asarray(correct, dtype=bool)
    if kind == "binary":
        return correct.astype(np.float32)
    if kind == "ternary":
        return np.where(correct, 1.0, -1.0).astype(np.float32)
    raise ValueError(f"reward kind must be 'binary' or 'ternary', got {kind!r}")


# ---------------------------------------------------------------- operand samplers


def sample_operand(rng: np.random.Generator, digits: int) -> int:
    """A uniform integer with exactly ``digits`` digits (0-9 for one digit)."""
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    if digits == 1:
        return int(rng.integers(0, 10))
    return int(rng.integers(10 ** (digits - 1), 10**digits))


def _check_n(n_digits: int) -> None:
    if isinstance(n_digits, bool) or not isinstance(n_digits, int) or n_digits < 1:
        raise ValueError(f"N (the pre-training digit count) must be an integer >= 1, got {n_digits!r}")


def pretrain_pairs(
    rng: np.random.Generator,
    count: int,
    n_digits: int,
    mix_fraction: float = 0.0,
    both_fraction: float = 0.0,
):
    """Pre-training pairs: each operand's length uniform in 1..N (balanced across lengths); a fraction
    ``mix_fraction`` of pairs instead has one random operand of exactly N+1 digits (the tiny-model
    deviation that gives RL a non-zero start). Of those mixed pairs, a share ``both_fraction`` has *both*
    operands of N+1 digits (the other half of the RL distribution). With ``both_fraction = 0`` the draws
    are exactly those of the one-long-operand mix."""
    _check_n(n_digits)
    for name, value in (("mix_fraction", mix_fraction), ("both_fraction", both_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    pairs = []
    for _ in range(count):
        la, lb = (int(x) for x in rng.integers(1, n_digits + 1, size=2))
        if rng.random() < mix_fraction:
            if both_fraction > 0 and rng.random() < both_fraction:
                la = lb = n_digits + 1
            elif rng.random() < 0.5:
                la = n_digits + 1
            else:
                lb = n_digits + 1
        pairs.append((sample_operand(rng, la), sample_operand(rng, lb)))
    return pairs


def operand_case(a: int, b: int, n_digits: int) -> str:
    """Which part of the RL distribution a pair belongs to: ``both_long`` (both operands longer than N),
    ``one_long`` (exactly one) or ``short`` (neither)."""
    longer = (len(str(a)) > n_digits) + (len(str(b)) > n_digits)
    return ("short", "one_long", "both_long")[longer]


def rl_pairs(rng: np.random.Generator, count: int, n_digits: int, plus_k: int = 1):
    """RL training pairs (authors' code): a random operand has exactly N+k digits; the other has a length
    uniform in 1..N half the time, otherwise in N+1..N+k."""
    _check_n(n_digits)
    if plus_k < 1:
        raise ValueError(f"plus_k must be >= 1, got {plus_k}")
    pairs = []
    for _ in range(count):
        long_op = sample_operand(rng, n_digits + plus_k)
        if rng.random() < 0.5:
            other_len = int(rng.integers(1, n_digits + 1))
        else:
            other_len = int(rng.integers(n_digits + 1, n_digits + plus_k + 1))
        other = sample_operand(rng, other_len)
        pairs.append((long_op, other) if rng.random() < 0.5 else (other, long_op))
    return pairs


def comfort_pairs(rng: np.random.Generator, count: int, n_digits: int):
    """In-distribution ("comfort zone") pairs: both operand lengths uniform in 1..N."""
    return pretrain_pairs(rng, count, n_digits, 0.0)


def eval_pairs(rng: np.random.Generator, count: int, digits: int, mode: str = "identical"):
    """Evaluation pairs at a tested length: ``identical`` (both operands have ``digits`` digits) or
    ``varying`` (one has it, the other a uniform shorter length 1..digits-1)."""
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    if mode not in ("identical", "varying"):
        raise ValueError(f"mode must be 'identical' or 'varying', got {mode!r}")
    pairs = []
    for _ in range(count):
        a = sample_operand(rng, digits)
        if mode == "identical" or digits == 1:
            b = sample_operand(rng, digits)
        else:
            b = sample_operand(rng, int(rng.integers(1, digits)))
        pairs.append((a, b) if rng.random() < 0.5 else (b, a))
    return pairs


# ---------------------------------------------------------------- critical positions


@dataclass(frozen=True)
class CriticalPosition:
    """A character offset in ``scratchpad(a, b)`` whose correct character is ``char``."""

    offset: int
    char: str
    step: int  # decomposition line, 1-based
    operand: int  # 1 or 2


def critical_positions(a: int, b: int, n_digits: int, max_step: int = 3) -> list[CriticalPosition]:
    """Critical positions in the continuation (authors' locator): in decomposition lines 1..3, for each
    operand longer than N (gap g = length - N), the last 2g characters before that list's ``]``."""
    _check_n(n_digits)
    text = scratchpad(a, b)
    lines = scratchpad_lines(a, b)
    line_start = len(f"\n{SCRATCH_OPEN}\n")
    found = []
    for step, line in enumerate(lines[:max_step], start=1):
        if line.startswith("[] + []"):
            break
        left_end = line.index("]")
        right_open = line.index("[", left_end + 1)
        right_end = line.index("]", right_open)
        for operand, (x, close) in enumerate(((a, left_end), (b, right_end)), start=1):
            gap = len(str(x)) - n_digits
            if gap <= 0:
                continue
            opening = line.rfind("[", 0, close)
            first = max(close - 2 * gap, opening + 1)
            for col in range(first, close):
                offset = line_start + col
                found.append(CriticalPosition(offset, text[offset], step, operand))
        line_start += len(line) + 1
    return found

"""Digit-index embeddings (``critical.model.positions=digit_index``): every digit gets a learned embedding
of its index inside its number or digit list, added to its token embedding, as in the "Abacus"
embeddings of McLeish et al. 2024 ("Transformers Can Do Arithmetic with the Right Embeddings"). Written
here for the scratchpad format; the model is GPT-2 without absolute positions (``nope``: the position
table zeroed and frozen) plus this embedding.

**Index.** A *digit run* is a maximal stretch of digits in which consecutive digits are adjacent or apart
by exactly one separator character, ``,`` or a space. That covers each form a number takes here: an
operand of the prompt (``128``), a digit list of a scratchpad line (``[1,2,8]``), the result (``4 9 5``),
a sum (``=15``), a carry (``C=0``). The k-th digit of a run, counted from the left (most significant
first), has index k; every other character has index 0. So the 4th digit of an operand and the 4th
element of its copied list share index 4, and "is there a digit of index i+1 in the operand?" is the
question a model must answer where the authors' critical commas sit. Two runs never merge across
`` , `` (three characters) or ``+``, so ``C=0 , 8+7+0=15`` holds five runs. Left padding (``%``) is not a
digit, so a row's indices do not depend on its padding.

**Offsets.** In pre-training each example adds one random offset in 0..``max_offset`` to all its digit
indices (non-digits stay 0), so that the embeddings of indices longer operands need at test time are
trained too; at evaluation and in RL the offset is 0, as in McLeish et al. (whose offsets reach 100,
for operands of up to 20 digits; ours reach ``DIGIT_INDEX_SIZE`` - 1 minus the longest run).

The table has ``DIGIT_INDEX_SIZE`` rows (0 = not a digit). Training examples must fit in it
(``training_offsets`` refuses longer operands); a longer run, which only a model's own wrong output makes
(a string of digits while sampling), gives its later digits the last row's embedding.
"""

import numpy as np
import torch
from torch import nn
from transformers import GPT2LMHeadModel, GPT2Model
from transformers.models.gpt2.modeling_gpt2 import GPT2PreTrainedModel

from fourfold.critical.tokenizer import CharTokenizer

DIGIT_INDEX_SIZE = 32  # rows of the index table: index 0 (not a digit) and runs of up to 31 digits
SEPARATORS = ", "  # one of these between two digits keeps them in one run


def digit_ids(tokenizer: CharTokenizer) -> list[int]:
    return [tokenizer.stoi[c] for c in "0123456789"]


def separator_ids(tokenizer: CharTokenizer) -> list[int]:
    return [tokenizer.stoi[c] for c in SEPARATORS]


def digit_indices(ids: torch.Tensor, digits: torch.Tensor, separators: torch.Tensor) -> torch.Tensor:
    """The index of every token inside its digit run (module docstring), [B, L] -> [B, L] long; 0 on
    non-digits. ``digits`` and ``separators`` are 1-D tensors of the token ids of each class."""
    is_digit = torch.isin(ids, digits)
    is_separator = torch.isin(ids, separators)
    before = torch.zeros_like(is_digit[:, :1])
    prev_digit = torch.cat([before, is_digit[:, :-1]], dim=1)
    prev_separator = torch.cat([before, is_separator[:, :-1]], dim=1)
    two_back_digit = torch.cat([before, before, is_digit[:, :-2]], dim=1)[:, : ids.shape[1]]
    continues = is_digit & (prev_digit | (prev_separator & two_back_digit))
    starts = is_digit & ~continues
    count = is_digit.long().cumsum(-1)  # digits so far, this one included
    count_at_start = torch.where(starts, count, torch.zeros_like(count)).cummax(-1).values
    return torch.where(is_digit, count - count_at_start + 1, torch.zeros_like(count))


def text_digit_indices(text: str, tokenizer: CharTokenizer | None = None) -> list[int]:
    """``digit_indices`` of one text (for tests and for reading)."""
    tokenizer = tokenizer or CharTokenizer()
    ids = torch.tensor([tokenizer.encode(text)])
    digits, separators = torch.tensor(digit_ids(tokenizer)), torch.tensor(separator_ids(tokenizer))
    return digit_indices(ids, digits, separators)[0].tolist()


def longest_run(n_digits: int) -> int:
    """The longest digit run of an addition of operands with at most ``n_digits`` digits: the result,
    which has one digit more than the longer operand when the last carry is 1."""
    return n_digits + 1


def training_offsets(rng: np.random.Generator, count: int, longest_digits: int) -> np.ndarray:
    """``count`` offsets, uniform in 0..max so that the longest run of ``longest_digits``-digit operands
    still fits in the table."""
    high = DIGIT_INDEX_SIZE - 1 - longest_run(longest_digits)
    if high < 0:
        raise ValueError(
            f"{longest_digits}-digit operands make digit runs longer than the index table "
            f"({DIGIT_INDEX_SIZE - 1}): use fewer digits"
        )
    return rng.integers(0, high + 1, size=count)


def offset_indices(index: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Add each row's offset to its digit indices ([B, L] and [B]); non-digits keep index 0."""
    return torch.where(index > 0, index + offsets[:, None].to(index), index)


class DigitIndexGPT2Model(GPT2Model):
    """GPT-2's trunk with a digit-index embedding added to the token embedding. ``forward`` takes the
    library's arguments plus ``digit_index`` ([B, L], e.g. with training offsets); without it the indices
    are computed from ``input_ids``, which must then be the whole sequence (no cache)."""

    def __init__(self, config):
        super().__init__(config)
        self.digit_index = nn.Embedding(config.digit_index_size, config.n_embd)
        nn.init.normal_(self.digit_index.weight, std=config.initializer_range)
        self.register_buffer("digit_ids", torch.tensor(config.digit_ids), persistent=False)
        self.register_buffer("separator_ids", torch.tensor(config.separator_ids), persistent=False)

    def digit_indices(self, ids: torch.Tensor) -> torch.Tensor:
        return digit_indices(ids, self.digit_ids, self.separator_ids)

    def index_embeddings(self, index: torch.Tensor) -> torch.Tensor:
        # Indices past the table share its last row: only a model's own wrong output (a long string of
        # digits while sampling) makes such runs; the training data are checked to fit.
        return self.digit_index(index.clamp(max=self.digit_index.num_embeddings - 1))

    def forward(self, input_ids=None, *args, inputs_embeds=None, digit_index=None, **kwargs):
        if inputs_embeds is None and input_ids is not None:
            if digit_index is None:
                cache = kwargs.get("cache", kwargs.get("past_key_values"))
                if cache is not None and cache.get_seq_length() > 0:
                    raise ValueError(
                        "a digit-index model needs the whole sequence (or digit_index) to index new "
                        "tokens; decode with fourfold.critical.decoding.StaticDecoder"
                    )
                digit_index = self.digit_indices(input_ids)
            inputs_embeds = self.wte(input_ids) + self.index_embeddings(digit_index.to(input_ids.device))
            input_ids = None
        return super().forward(input_ids, *args, inputs_embeds=inputs_embeds, **kwargs)


class DigitIndexGPT2LMHeadModel(GPT2LMHeadModel):
    """``GPT2LMHeadModel`` over ``DigitIndexGPT2Model`` (the same head, tied to the token embedding)."""

    def __init__(self, config):
        GPT2PreTrainedModel.__init__(self, config)
        self.transformer = DigitIndexGPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()


def digit_index_model(config, tokenizer: CharTokenizer) -> DigitIndexGPT2LMHeadModel:
    """A freshly initialised digit-index GPT-2 for ``config`` (a ``GPT2Config``), indexing the digits of
    ``tokenizer``'s vocabulary."""
    config.digit_index_size = DIGIT_INDEX_SIZE
    config.digit_ids = digit_ids(tokenizer)
    config.separator_ids = separator_ids(tokenizer)
    return DigitIndexGPT2LMHeadModel(config)

"""Incremental decoding: ``decoder(model, batch, max_len)`` feeds a causal LM the prompt, then one token per
step, and returns the logits at the new positions.

GPT-2 models (position schemes ``learned``, ``nope``, ``digit_index``) get ``StaticDecoder``, a
preallocated key/value buffer. Profiling one RL iteration showed sampling to be three quarters of its
time, and a quarter of the sampling in ``torch.cat``: the library's growing cache copies every layer's
keys and values at every token. Here the keys and values go into a buffer sized for the whole episode,
and each step attends to its filled prefix. The arithmetic is the model's own (its embeddings, layer
norms, ``c_attn``/``c_proj`` and MLP modules); only the attention bookkeeping is ours, and
``tests/critical/test_decoding.py`` checks it against the library's full forward pass. Any other causal LM
(``rope``: Llama) gets ``LibraryCacheDecoder``: the library's own key/value cache through the model's
forward, with the attention mask of the whole sequence so far and the new tokens' position ids.
"""

import inspect
import math

import torch
import torch.nn.functional as F


def is_gpt2(model) -> bool:
    """Whether ``model`` is a transformers GPT-2 (the ``StaticDecoder`` fast path)."""
    from transformers import GPT2LMHeadModel

    return isinstance(model, GPT2LMHeadModel)


def decoder(model, batch: int, max_len: int):
    """The incremental decoder for ``model``: ``StaticDecoder`` for GPT-2, else ``LibraryCacheDecoder``."""
    return (StaticDecoder if is_gpt2(model) else LibraryCacheDecoder)(model, batch, max_len)


class StaticDecoder:
    """Feeds a ``GPT2LMHeadModel`` tokens chunk by chunk (the prompt, then one token per step) for a batch
    of ``batch`` rows, keeping every layer's keys and values in a buffer of ``max_len`` positions.

    Each call passes the new token ids, their position ids and whether each new position may be attended
    to (False on left padding), all [B, t]; it returns the logits at the new positions, [B, t, V]."""

    def __init__(self, model, batch: int, max_len: int):
        c = model.config
        if getattr(c, "scale_attn_by_inverse_layer_idx", False) or getattr(c, "reorder_and_upcast_attn", 0):
            raise ValueError("StaticDecoder supports GPT-2's default attention (no layer scaling or upcast)")
        if not is_gpt2(model):
            raise ValueError("StaticDecoder decodes GPT-2; decoding.decoder(model, ...) takes any model")
        param = next(model.parameters())
        self.model, self.trunk = model, model.transformer
        self.n_head, self.head_dim = c.n_head, c.n_embd // c.n_head
        self.scale = 1.0 / math.sqrt(self.head_dim) if c.scale_attn_weights else 1.0
        shape = (c.n_layer, batch, c.n_head, max_len, self.head_dim)
        self.keys = torch.zeros(shape, dtype=param.dtype, device=param.device)
        self.values = torch.zeros(shape, dtype=param.dtype, device=param.device)
        self.attendable = torch.zeros(batch, max_len, dtype=torch.bool, device=param.device)
        # A digit-index trunk indexes each new token by the digits before it: keep the ids seen so far.
        indexed = hasattr(self.trunk, "digit_indices")
        self.history = torch.zeros(batch, max_len, dtype=torch.long, device=param.device) if indexed else None
        self.length = 0

    @torch.no_grad()
    def __call__(self, ids: torch.Tensor, positions: torch.Tensor, attendable: torch.Tensor) -> torch.Tensor:
        batch, new = ids.shape
        start, end = self.length, self.length + new
        if end > self.keys.shape[3]:
            raise ValueError(f"the decoder's buffer holds {self.keys.shape[3]} positions, asked for {end}")
        device = self.keys.device
        self.attendable[:, start:end] = attendable.to(device)
        # Query i (absolute start + i) sees attendable keys up to itself, and always itself (so that a
        # padding query, which sees nothing else, gives finite numbers; no real query ever attends to it).
        causal = torch.ones(new, end, dtype=torch.bool, device=device).tril(diagonal=start)
        itself = torch.zeros(new, end, dtype=torch.bool, device=device)
        itself[torch.arange(new), torch.arange(start, end)] = True
        mask = (self.attendable[:, None, None, :end] & causal) | itself
        hidden = self.trunk.wte(ids.to(device))
        if self.history is not None:
            self.history[:, start:end] = ids.to(device)
            index = self.trunk.digit_indices(self.history[:, :end])[:, start:end]
            hidden = hidden + self.trunk.index_embeddings(index)  # the order of the trunk's own forward
        hidden = hidden + self.trunk.wpe(positions.to(device))
        for layer, block in enumerate(self.trunk.h):
            q, k, v = block.attn.c_attn(block.ln_1(hidden)).split(hidden.shape[-1], dim=2)
            q, k, v = (x.view(batch, new, self.n_head, self.head_dim).transpose(1, 2) for x in (q, k, v))
            self.keys[layer, :, :, start:end] = k
            self.values[layer, :, :, start:end] = v
            keys, values = (x[layer, :, :, :end].to(q.dtype) for x in (self.keys, self.values))  # autocast
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=self.scale)
            hidden = hidden + block.attn.c_proj(out.transpose(1, 2).reshape(batch, new, -1))
            hidden = hidden + block.mlp(block.ln_2(hidden))
        self.length = end
        return self.model.lm_head(self.trunk.ln_f(hidden))


class LibraryCacheDecoder:
    """``StaticDecoder``'s interface over the library's own key/value cache, for causal LMs other than
    GPT-2: each call runs the model's forward on the new tokens with the cache, the attention mask of the
    whole sequence so far (left padding masked) and the new tokens' position ids."""

    def __init__(self, model, batch: int, max_len: int):
        from transformers import DynamicCache

        self.model = model
        device = next(model.parameters()).device
        self.attendable = torch.zeros(batch, max_len, dtype=torch.long, device=device)
        # transformers 5 renamed the forward's ``past_key_values`` to ``cache``.
        params = inspect.signature(model.forward).parameters
        self.keyword = "cache" if "cache" in params else "past_key_values"
        try:
            self.cache = DynamicCache(config=model.config)
        except TypeError:  # transformers 4: no config argument
            self.cache = DynamicCache()
        self.length = 0

    @torch.no_grad()
    def __call__(self, ids: torch.Tensor, positions: torch.Tensor, attendable: torch.Tensor) -> torch.Tensor:
        start, end = self.length, self.length + ids.shape[1]
        if end > self.attendable.shape[1]:
            held = self.attendable.shape[1]
            raise ValueError(f"the decoder's buffer holds {held} positions, asked for {end}")
        device = self.attendable.device
        self.attendable[:, start:end] = attendable.to(device).long()
        out = self.model(
            input_ids=ids.to(device),
            attention_mask=self.attendable[:, :end],
            position_ids=positions.to(device),
            use_cache=True,
            **{self.keyword: self.cache},
        )
        self.cache = getattr(out, self.keyword)
        self.length = end
        return out.logits

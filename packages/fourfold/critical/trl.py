"""The prioritized KL penalty inside TRL's ``GRPOTrainer`` (optional extra: ``pip install 'fourfold[trl]'``).

``PrioritizedKLGRPOTrainer`` takes every argument of ``trl.GRPOTrainer`` plus ``kl_priority_exponent``
(beta of the paper; 0 = the stock trainer) and ``certainty`` (``shannon``: J = 1 - H / log|V| of the
reference's next-token distribution at the sampling temperature). TRL's per-token KL term
``beta * kl_t`` becomes ``beta * w_t * kl_t`` with w_t = J_ref(t) ** exponent, detached; everything else
(TRL's k3 estimator, its advantages, clipping and loss aggregation) is TRL's own. It logs w's mean, 10%
quantile and minimum each step (``kl_weight/mean``, ``kl_weight/p10``, ``kl_weight/min``).

Three traps of TRL 1.16 with small Hugging Face models are handled here:
- **positions**: TRL scores completions from ``input_ids`` and ``attention_mask`` only, so an absolute-
  position model (GPT-2) sees left-padded prompts at shifted positions while ``generate`` counted them from
  the mask. The trainer passes ``position_ids`` counted from the mask to every scoring pass of the policy
  and the reference (``positions_from_mask=True``); for rotary models (Llama, Qwen) it changes nothing.
- **the reference**: ``GRPOTrainer`` rebuilds it with ``from_pretrained`` from the policy's
  ``config._name_or_path``; a model built in memory has none. Load the policy from a local directory
  (``save_pretrained`` it first); the trainer says so at construction instead of failing later.
- **where a completion ends**: TRL stops at EOS only. ``completion_stop`` (a ``hf.StopRule``, e.g.
  ``hf.SCRATCHPAD_STOP``) ends generation early and cuts every completion where the rule says.

The weighting relies on one expression of ``GRPOTrainer._compute_loss`` (``RELIED_ON``), checked at
construction: an upgrade of TRL that moves it fails loudly instead of silently training the stock loss.
"""

import contextlib
import inspect
import math
import warnings
from pathlib import Path

import torch

try:
    import trl
    from trl import GRPOTrainer
    from trl.trainer.utils import add_fused_lm_head
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "fourfold.critical.trl needs TRL: pip install 'fourfold[trl]' (tested with trl==1.16.0)"
    ) from err

from fourfold.critical.hf import StopRule
from fourfold.critical.kl import beta_rule, check_beta
from fourfold.critical.tokens import left_padded, sequence_certainty

TESTED_TRL_VERSION = "1.16.0"
RELIED_ON = "per_token_loss = per_token_loss + self.beta * per_token_kl"  # in GRPOTrainer._compute_loss
TRL_CERTAINTY_KINDS = ("shannon",)  # what TRL's fused LM head can give without full logits (its entropy)


def check_trl_compatibility() -> None:
    """Raise if the installed TRL no longer computes the KL term through ``RELIED_ON``; warn if its
    version is not the tested one (the expression may still be there)."""
    source = inspect.getsource(GRPOTrainer._compute_loss)
    if RELIED_ON not in source:
        raise RuntimeError(
            f"trl {trl.__version__}: GRPOTrainer._compute_loss no longer contains {RELIED_ON!r}, which "
            f"PrioritizedKLGRPOTrainer weights per token; install trl=={TESTED_TRL_VERSION} "
            "(pip install 'fourfold[trl]') or port the subclass"
        )
    if trl.__version__ != TESTED_TRL_VERSION:
        warnings.warn(
            f"PrioritizedKLGRPOTrainer was tested with trl=={TESTED_TRL_VERSION}, found {trl.__version__}",
            stacklevel=3,
        )


def certainty_from_entropy(entropy: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Shannon certainty J = 1 - H / log|V| in [0, 1] from the entropy H (nats) of a distribution over
    ``vocab_size`` symbols: ``kl.certainty(probs, "shannon")`` for the distribution with that entropy."""
    return (1.0 - entropy.float() / math.log(vocab_size)).clamp(0.0, 1.0)


class _TokenWeightedCoefficient(float):
    """TRL's KL coefficient beta that, multiplied by the per-token KL tensor, also multiplies it by the
    per-token weights: ``beta * kl`` gives ``beta * (w * kl)``. Compared or used as a number it is beta."""

    def __new__(cls, value: float, weights: torch.Tensor):
        obj = super().__new__(cls, value)
        obj.weights = weights
        return obj

    def __mul__(self, other):
        if isinstance(other, torch.Tensor):
            return float(self) * (self.weights.to(other.device, other.dtype) * other)
        return float(self) * other

    __rmul__ = __mul__


def _accepts_position_ids(model) -> bool:
    base = getattr(model, "module", model)  # DDP and similar wrappers
    try:
        return "position_ids" in inspect.signature(type(base).forward).parameters
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def positions_from_mask(model, enabled: bool = True):
    """While active, a forward call of ``model`` given ``input_ids`` and a 2-D ``attention_mask`` of the
    same shape, and no ``position_ids``, gets positions counted from each row's first attended token."""
    if not enabled or not _accepts_position_ids(model):
        yield
        return

    def hook(module, args, kwargs):
        mask, ids = kwargs.get("attention_mask"), kwargs.get("input_ids")
        if kwargs.get("position_ids") is None and mask is not None and ids is not None:
            if mask.dim() == 2 and mask.shape == ids.shape:
                kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp_min(0)
        return args, kwargs

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def _model_argument(args, kwargs):
    return kwargs.get("model", args[0] if args else None)


def _check_reference_source(model, beta: float) -> None:
    """With a KL term, TRL rebuilds the reference from the policy's path: say early when there is none."""
    if beta == 0.0 or isinstance(model, str) or model is None:
        return
    if getattr(model, "peft_config", None):
        return  # PEFT: TRL's reference is the base model with the adapter disabled
    source = getattr(model.config, "_name_or_path", "") or ""
    if not source or not Path(source).is_dir():
        raise ValueError(
            f"GRPOTrainer rebuilds the reference model with from_pretrained({source!r}), not a local "
            "model directory: save the policy first (model.save_pretrained(DIR), tokenizer too) and pass DIR "
            "or AutoModelForCausalLM.from_pretrained(DIR)"
        )


class PrioritizedKLGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` with the KL term weighted per token by w = J_ref ** ``kl_priority_exponent``.

    ``certainty``: ``shannon`` (J = 1 - H(pi_ref(.|s)) / log|V| at the sampling temperature).
    ``positions_from_mask``: pass mask-derived ``position_ids`` when scoring (see the module docstring).
    ``completion_stop``: a ``hf.StopRule`` ending completions besides EOS (None: EOS only).
    """

    def __init__(
        self,
        *args,
        kl_priority_exponent: float = 0.0,
        certainty: str = "shannon",
        positions_from_mask: bool = True,
        completion_stop: StopRule | None = None,
        **kwargs,
    ):
        check_trl_compatibility()
        self.kl_priority_exponent = check_beta(float(kl_priority_exponent))
        if certainty not in TRL_CERTAINTY_KINDS:
            raise ValueError(
                f"certainty must be one of {TRL_CERTAINTY_KINDS} in the TRL trainer, got {certainty!r} "
                "(TRL's fused LM head returns the reference's entropy, not its full distribution)"
            )
        self.certainty = certainty
        self.positions_from_mask = bool(positions_from_mask)
        self.completion_stop = completion_stop
        self._reference_entropies = None
        config = kwargs.get("args", args[2] if len(args) > 2 else None)
        _check_reference_source(_model_argument(args, kwargs), getattr(config, "beta", 0.0))
        super().__init__(*args, **kwargs)
        if self.kl_priority_exponent > 0:
            if self.beta == 0.0:
                raise ValueError(
                    "kl_priority_exponent > 0 weights TRL's KL term, but GRPOConfig.beta (its coefficient) "
                    "is 0: set beta > 0, or kl_priority_exponent=0"
                )
            if self.ref_model is None:
                raise ValueError("the prioritized KL needs a separate reference model; PEFT is not supported")
            # TRL's reference head returns log-probs only; the weights need its entropy too.
            add_fused_lm_head(
                self.ref_model,
                temperature=self.temperature,
                cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32,
                outputs=("log_probs", "entropy"),
            )

    # --- scoring: positions, and the reference's entropies -------------------------------------------------

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        **kwargs,
    ):
        capture = self.kl_priority_exponent > 0 and self.ref_model is not None and model is self.ref_model
        with positions_from_mask(model, self.positions_from_mask):
            logps, entropies, aux = super()._get_per_token_logps_and_entropies(
                model,
                input_ids,
                attention_mask,
                logits_to_keep,
                batch_size=batch_size,
                compute_entropy=compute_entropy or capture,
                **kwargs,
            )
        if capture:
            self._reference_entropies = entropies
            entropies = entropies if compute_entropy else None
        return logps, entropies, aux

    def _generate_and_score_completions(self, inputs):
        self._reference_entropies = None
        output = super()._generate_and_score_completions(inputs)
        if self.kl_priority_exponent > 0:
            entropies, self._reference_entropies = self._reference_entropies, None
            if entropies is None:
                raise RuntimeError(
                    f"trl {trl.__version__} did not score the reference through "
                    "_get_per_token_logps_and_entropies: the prioritized KL cannot get its certainty"
                )
            vocab = self.ref_model.get_output_embeddings().weight.shape[0]
            output["ref_certainty"] = certainty_from_entropy(entropies, vocab)
            self._log_weights(output)
        return output

    def _kl_weights(self, certainty: torch.Tensor) -> torch.Tensor:
        return certainty.detach().pow(self.kl_priority_exponent)

    def _log_weights(self, output: dict) -> None:
        mask = output["completion_mask"].bool()
        if "tool_mask" in output:
            mask = mask & output["tool_mask"].bool()
        w = self._kl_weights(output["ref_certainty"])
        w = self.accelerator.pad_across_processes(w, dim=1, pad_index=float("nan"))
        mask = self.accelerator.pad_across_processes(mask, dim=1, pad_index=False)
        valid = self.accelerator.gather(w)[self.accelerator.gather(mask)].float()
        if valid.numel() == 0:
            return
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["kl_weight/mean"].append(float(valid.mean()))
        self._metrics[mode]["kl_weight/p10"].append(float(torch.quantile(valid, 0.1)))
        self._metrics[mode]["kl_weight/min"].append(float(valid.min()))

    # --- the loss ---------------------------------------------------------------------------------------

    def _compute_loss(self, model, inputs):
        if self.kl_priority_exponent == 0 or self.beta == 0.0:
            return super()._compute_loss(model, inputs)
        stock = self.beta
        self.beta = _TokenWeightedCoefficient(stock, self._kl_weights(inputs["ref_certainty"]))
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self.beta = stock

    # --- where completions end --------------------------------------------------------------------------

    def _generate_single_turn(self, prompt_ids, *args, **kwargs):
        if self.completion_stop is None:
            return super()._generate_single_turn(prompt_ids, *args, **kwargs)
        model = self.accelerator.unwrap_model(self.model)
        generate = model.generate

        def generate_with_stop(*g_args, **g_kwargs):
            ids = g_kwargs.get("input_ids", g_args[0] if g_args else None)
            stop = self.completion_stop.stopping_criteria(self.processing_class, ids.shape[1])
            return generate(*g_args, stopping_criteria=[stop], **g_kwargs)

        model.generate = generate_with_stop
        try:
            completion_ids, logprobs = super()._generate_single_turn(prompt_ids, *args, **kwargs)
        finally:
            del model.generate  # back to the class's method
        kept = []
        for ids in completion_ids:
            keep = self.completion_stop.tokens_to_keep(list(ids), self.processing_class)
            kept.append(ids if keep is None else ids[:keep])
        if logprobs is not None:
            logprobs = [lp[: len(ids)] for lp, ids in zip(logprobs, kept)]
        return kept, logprobs


@torch.no_grad()
def beta_by_rule(
    reference,
    tokenizer,
    prompts: list[str],
    completions: list[str] | None = None,
    *,
    keep: float = 0.9,
    quantile: float = 0.1,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    completion_stop: StopRule | None = None,
    batch_size: int = 16,
    seed: int = 0,
) -> float:
    """``kl.beta_rule`` for any Hugging Face causal LM: the largest exponent that keeps w = J^beta >=
    ``keep`` on all but the least certain ``quantile`` of the reference's completion tokens, J the Shannon
    certainty at ``temperature``. The completions are ``completions`` (one per prompt: e.g. correct
    answers, as the Lightning loop's rule uses correct scratchpads) or, if None, one sampled from the
    reference per prompt at ``temperature`` (ended by EOS, ``completion_stop`` or ``max_new_tokens``)."""
    if completions is not None and len(completions) != len(prompts):
        raise ValueError(
            f"got {len(prompts)} prompts but {len(completions)} completions: give one per prompt"
        )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prompt_ids = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    if completions is None:
        completion_ids = _sample(reference, tokenizer, prompt_ids, pad_id, temperature, max_new_tokens,
                                 completion_stop, batch_size, seed)  # fmt: skip
    else:
        completion_ids = [tokenizer.encode(c, add_special_tokens=False) for c in completions]
    sequences = [p + c for p, c in zip(prompt_ids, completion_ids)]
    j = sequence_certainty(reference, sequences, pad_id, temperature=temperature, batch_size=batch_size)
    values = torch.cat([row[len(row) - len(c) :] for row, c in zip(j, completion_ids) if c])
    return beta_rule(values.double().numpy(), keep, quantile)


def _sample(reference, tokenizer, prompt_ids, pad_id, temperature, max_new_tokens, stop, batch_size, seed):
    device = next(reference.parameters()).device
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(prompt_ids), batch_size):
            ids, mask, _ = left_padded(prompt_ids[start : start + batch_size], pad_id)
            extra = {"stopping_criteria": [stop.stopping_criteria(tokenizer, ids.shape[1])]} if stop else {}
            generated = reference.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=True,
                temperature=temperature, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                pad_token_id=pad_id, eos_token_id=tokenizer.eos_token_id, **extra,
            )  # fmt: skip
            for row in generated[:, ids.shape[1] :].tolist():
                if tokenizer.eos_token_id in row:  # keep the EOS, as TRL does
                    row = row[: row.index(tokenizer.eos_token_id) + 1]
                keep = stop.tokens_to_keep(row, tokenizer) if stop else None
                out.append(row if keep is None else row[:keep])
    return out

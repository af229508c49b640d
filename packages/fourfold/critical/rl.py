"""The RL stage driver: ``fine_tune`` runs the RL iterations of ``lit.RLLit`` through
``fourfold.core.train.fit``. The math (advantages, the section 4.3 loss) is in ``losses``; the module
imports ``lit``, never the other way round.
"""

import warnings


def fine_tune(
    policy,
    reference,
    tokenizer,
    settings,
    *,
    iterations: int,
    run_dir,
    trainer_cfg,
    critic=None,
    checkpoint_every: int = 10,
    label: str = "RL",
    **trainer_overrides,
) -> dict[str, float]:
    """Run ``iterations`` RL iterations (collect + one optimiser step each) through
    ``fourfold.core.train.fit``; resumes from ``run_dir/checkpoints/last.ckpt`` after an interruption.
    ``settings`` is a ``lit.RLSettings``; invalid settings fail before any compute."""
    # Imported here: Lightning takes seconds to import (``import fourfold.critical.rl`` stays cheap).
    from torch.utils.data import DataLoader

    from fourfold.core.train import fit
    from fourfold.critical.lit import RLLit

    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    module = RLLit(policy, reference, tokenizer, settings, critic=critic)
    steps = DataLoader(list(range(iterations)), batch_size=1)
    with warnings.catch_warnings():
        # Expected here: the frozen reference stays in eval mode; checkpoints hold the post-step state; the
        # iteration loader restarts on resume (each iteration's data is seeded by its step, not the loader).
        for message in (
            ".*module\\(s\\) in eval mode.*",
            ".*no pre-optimization state.*",
            ".*not resumable.*",
        ):
            warnings.filterwarnings("ignore", message=message)
        return fit(
            module,
            steps,
            trainer_cfg=trainer_cfg,
            run_dir=run_dir,
            max_steps=iterations,
            seed=settings.seed,
            checkpoint_every_n_steps=checkpoint_every,
            progress_name=label,
            **trainer_overrides,
        )

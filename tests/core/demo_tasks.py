"""Tasks the CLI tests dispatch to (importable through PYTHONPATH=tests/core)."""


def echo(cfg):
    if cfg.demo.fail:
        raise RuntimeError("demo task failed on purpose")
    return {"value": cfg.demo.value * (cfg.seed + 1), "seed": cfg.seed}

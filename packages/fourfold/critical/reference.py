"""The presets' pre-trained references, shipped in the package (issue 19, item 6), so that a fresh clone
has a model without 16-58 minutes of pre-training.

``weights/<name>_reference.pt`` is a ``model.save_checkpoint`` file (tensors and plain types, read with
``torch.load(weights_only=True)``, fp32, about 1.6 MB): the model of ``experiment=critical/<name>``, one per
name in ``SHIPPED``: ``quick`` (the paper's setting as far as our budget reaches) and ``mix`` (the
learned-position GPT-2 pre-trained with 5% (N+1)-digit examples, the quick preset before issue 19).
``<name>_reference.json`` beside it holds its provenance: the command, seed and steps, the spec, the
sha256 of the file and of its tensors, and what it was checked against. The task seeds its pre-training
cache with a shipped file when a degree's spec is that file's (``critical.pretrain.shipped_reference``),
so the RL stage starts at once.

``python -m fourfold.critical.reference [--name NAME]`` checks a file against its provenance; ``--verify``
pre-trains that reference again with its preset's own command into a scratch cache (16 min pinned to one
core, up to 58 on a core shared with other jobs) and compares every tensor and both hashes with the file.
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import torch

from fourfold.critical.pretrain import PretrainSpec, cached_model_path

WEIGHTS = "weights"
SHIPPED = ("quick", "mix")  # the presets whose reference ships: weights/<name>_reference.{pt,json}


def pretrain_command(name: str) -> list[str]:
    """The command that pre-trains preset ``name``'s reference (--verify adds a scratch cache and run)."""
    return [
        "-m", "fourfold", f"experiment=critical/{_known(name)}", "critical.stages=[pretrain]",
        "critical.pretrain.shipped_reference=false",
    ]  # fmt: skip


def _known(name: str) -> str:
    if name not in SHIPPED:
        raise ValueError(f"no shipped reference named {name!r}: choose one of {', '.join(SHIPPED)}")
    return name


def shipped_reference_path(name: str = "quick") -> Path:
    """Where preset ``name``'s shipped reference is (a ``.pt`` that ``model.load_checkpoint`` reads)."""
    return Path(str(resources.files("fourfold.critical") / WEIGHTS / f"{_known(name)}_reference.pt"))


def provenance_path(name: str = "quick") -> Path:
    return shipped_reference_path(name).with_suffix(".json")


def provenance(name: str = "quick") -> dict:
    """A shipped reference's provenance (``<name>_reference.json``)."""
    return json.loads(provenance_path(name).read_text(encoding="utf-8"))


def shipped_spec(name: str = "quick") -> PretrainSpec:
    return PretrainSpec(**provenance(name)["spec"])


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tensor_sha256(state_dict: dict) -> str:
    """A hash of a state dict's tensors that does not depend on the file format: every tensor's name,
    dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def load_shipped_reference(tokenizer=None, name: str = "quick"):
    """(model, tokenizer, extra) of a shipped reference, after checking the file's sha256 against its
    provenance (a changed or truncated file is an error, not a silently different model)."""
    from fourfold.critical.model import load_checkpoint

    path = shipped_reference_path(name)
    check_file(path, name)
    return load_checkpoint(path, tokenizer)


def check_file(path: Path, name: str = "quick") -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"the shipped reference {path} is missing: reinstall fourfold or check out the file"
        )
    wanted = provenance(name)["sha256"]
    if file_sha256(path) != wanted:
        raise ValueError(
            f"{path} does not have the sha256 of its provenance ({wanted}): the file was changed"
        )


def seed_cache(cache_dir: str | Path, spec: PretrainSpec) -> Path | None:
    """When ``spec`` is a shipped reference's and ``cache_dir`` lacks its checkpoint, copy the shipped
    file there (with a ``shipped.json`` saying so) and return its path; otherwise change nothing, None."""
    from fourfold.core.files import atomic_path, atomic_write_text

    target = cached_model_path(cache_dir, spec)
    if target.is_file():
        return None
    # the first shipped file (the package may lack one) whose spec is this one
    infos = ((n, provenance(n)) for n in SHIPPED if provenance_path(n).is_file())
    found = next(((n, info) for n, info in infos if info["spec"] == spec.record()), None)
    if found is None:
        return None
    name, info = found
    source = shipped_reference_path(name)
    check_file(source, name)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    note = {"copied_from": str(source), "sha256": info["sha256"], "provenance": provenance_path(name).name}
    atomic_write_text(target.with_name("shipped.json"), json.dumps(note, indent=2) + "\n")
    return target


def compare(retrained: Path, shipped: Path) -> dict:
    """How a retrained checkpoint compares with the shipped one: equal tensors, the largest difference,
    the tensor hashes and the file hashes."""
    a = torch.load(retrained, map_location="cpu", weights_only=True)
    b = torch.load(shipped, map_location="cpu", weights_only=True)
    sa, sb = a["state_dict"], b["state_dict"]
    if sa.keys() != sb.keys():
        raise ValueError(f"{retrained} and {shipped} hold different tensors")
    diffs = {k: float((sa[k].double() - sb[k].double()).abs().max()) if sa[k].numel() else 0.0 for k in sa}
    return {
        "tensors_equal": all(torch.equal(sa[k], sb[k]) for k in sa),
        "max_abs_difference": max(diffs.values()),
        "tensors_sha256": [tensor_sha256(sa), tensor_sha256(sb)],
        "file_sha256": [file_sha256(retrained), file_sha256(shipped)],
        "extra_equal": a["extra"] == b["extra"],
    }


def verify(scratch: Path, name: str = "quick") -> dict:
    """Pre-train reference ``name`` again with its preset's command into ``scratch`` and compare."""
    spec = shipped_spec(name)
    cache = scratch / "cache"
    command = [
        sys.executable,
        *pretrain_command(name),
        f"critical.cache_dir={cache}",
        f"hydra.run.dir={scratch / 'run'}",
    ]
    print("pre-training the reference again:", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)
    result = compare(cached_model_path(cache, spec), shipped_reference_path(name))
    result["matches"] = (
        result["tensors_equal"] and result["tensors_sha256"][0] == provenance(name)["tensors_sha256"]
    )
    return result


def export(source: Path, command: str, notes: dict, name: str = "quick") -> Path:
    """Ship ``source`` (a pre-trained ``model.pt`` of preset ``name``) as its reference: re-saved with
    ``model.save_checkpoint`` (byte-reproducible) into the package, with its provenance. Returns the path."""
    from fourfold.core.files import atomic_write_text
    from fourfold.critical.model import count_parameters, load_checkpoint, save_checkpoint

    model, tokenizer, extra = load_checkpoint(source)
    spec = PretrainSpec(**extra["spec"]).validate()
    target = shipped_reference_path(name)
    save_checkpoint(target, model, tokenizer, extra)
    state = torch.load(target, map_location="cpu", weights_only=True)["state_dict"]
    record = {
        "file": target.name,
        "sha256": file_sha256(target),
        "tensors_sha256": tensor_sha256(state),
        "spec_name": spec.name,
        "spec": extra["spec"],
        "positions": spec.positions,
        "parameters": count_parameters(model),
        "dtype": str(next(iter(state.values())).dtype).removeprefix("torch."),
        "command": command,
        "seed": spec.seed,
        "steps": spec.steps,
        "final_train_loss": extra.get("final_train_loss"),
        **notes,
    }
    atomic_write_text(provenance_path(name), json.dumps(record, indent=2) + "\n")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", choices=SHIPPED, default="quick", help="which preset's reference")
    parser.add_argument("--verify", action="store_true", help="pre-train the reference again and compare")
    parser.add_argument(
        "--scratch", type=Path, help="--verify's cache and run folder (default: a temporary one)"
    )
    parser.add_argument("--export", type=Path, help="ship this pre-trained model.pt as the reference")
    parser.add_argument("--command", help="--export: the command that pre-trained it")
    parser.add_argument(
        "--notes", type=json.loads, default={}, help="--export: more provenance, a JSON object"
    )
    args = parser.parse_args(argv)
    if args.export:
        if not args.command:
            parser.error("--export needs --command (how the model was pre-trained)")
        print(f"shipped {export(args.export, args.command, args.notes, args.name)}")
    path = shipped_reference_path(args.name)
    check_file(path, args.name)
    info = provenance(args.name)
    print(f"{path}: sha256 {info['sha256']} as in its provenance; {info['spec_name']}, {info['command']}")
    if not args.verify:
        return 0
    if args.scratch:
        result = verify(args.scratch, args.name)
    else:
        with tempfile.TemporaryDirectory(prefix="critical-reference-") as tmp:
            result = verify(Path(tmp), args.name)
    print(json.dumps(result, indent=2))
    print("the retrained reference matches the shipped one" if result["matches"] else "MISMATCH")
    return 0 if result["matches"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

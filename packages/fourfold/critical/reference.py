"""The quick preset's pre-trained reference, shipped in the package (issue 19, item 6), so that a fresh
clone has a model without 25-58 minutes of pre-training.

``weights/quick_reference.pt`` is a ``model.save_checkpoint`` file (tensors and plain types, read with
``torch.load(weights_only=True)``, fp32, about 1.6 MB): the model of ``experiment=critical/quick`` (a
learned-position tiny GPT-2, ``N3_mix0.05_both0.2_tiny_2000steps_345650d5``). ``quick_reference.json``
beside it holds its provenance: the command, seed and steps, the spec, the sha256 of the file and of its
tensors, and what it was checked against. The task seeds its pre-training cache with it when a degree's
spec is the shipped one (``critical.pretrain.shipped_reference``), so the RL stage starts at once.

``python -m fourfold.critical.reference`` checks the file against its provenance; ``--verify`` pre-trains
the reference again with the preset's own command into a scratch cache (16 min pinned to one core, up to
58 on a core shared with other jobs) and compares every tensor and both hashes with the shipped file.
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
REFERENCE_FILE = "quick_reference.pt"
PROVENANCE_FILE = "quick_reference.json"
# The command that pre-trains the reference; --verify adds a scratch cache and run folder.
PRETRAIN_COMMAND = [
    "-m", "fourfold", "experiment=critical/quick", "critical.stages=[pretrain]",
    "critical.pretrain.shipped_reference=false",
]  # fmt: skip


def shipped_reference_path() -> Path:
    """Where the shipped quick reference is (a ``.pt`` that ``model.load_checkpoint`` reads)."""
    return Path(str(resources.files("fourfold.critical") / WEIGHTS / REFERENCE_FILE))


def provenance() -> dict:
    """The shipped reference's provenance (``quick_reference.json``)."""
    path = shipped_reference_path().with_name(PROVENANCE_FILE)
    return json.loads(path.read_text(encoding="utf-8"))


def shipped_spec() -> PretrainSpec:
    return PretrainSpec(**provenance()["spec"])


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


def load_shipped_reference(tokenizer=None):
    """(model, tokenizer, extra) of the shipped reference, after checking the file's sha256 against its
    provenance (a changed or truncated file is an error, not a silently different model)."""
    from fourfold.critical.model import load_checkpoint

    path = shipped_reference_path()
    check_file(path)
    return load_checkpoint(path, tokenizer)


def check_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"the shipped reference {path} is missing: reinstall fourfold or check out the file"
        )
    wanted = provenance()["sha256"]
    if file_sha256(path) != wanted:
        raise ValueError(
            f"{path} does not have the sha256 of its provenance ({wanted}): the file was changed"
        )


def seed_cache(cache_dir: str | Path, spec: PretrainSpec) -> Path | None:
    """When ``spec`` is the shipped reference's and ``cache_dir`` lacks its checkpoint, copy the shipped
    file there (with a ``shipped.json`` saying so) and return its path; otherwise change nothing, None."""
    from fourfold.core.files import atomic_path, atomic_write_text

    target = cached_model_path(cache_dir, spec)
    if target.is_file() or spec.record() != provenance()["spec"]:
        return None
    source = shipped_reference_path()
    check_file(source)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    note = {"copied_from": str(source), "sha256": provenance()["sha256"], "provenance": PROVENANCE_FILE}
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


def verify(scratch: Path) -> dict:
    """Pre-train the reference again with the preset's command into ``scratch`` and compare (``compare``)."""
    spec = shipped_spec()
    cache = scratch / "cache"
    command = [
        sys.executable,
        *PRETRAIN_COMMAND,
        f"critical.cache_dir={cache}",
        f"hydra.run.dir={scratch / 'run'}",
    ]
    print("pre-training the reference again:", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)
    result = compare(cached_model_path(cache, spec), shipped_reference_path())
    result["matches"] = (
        result["tensors_equal"] and result["tensors_sha256"][0] == provenance()["tensors_sha256"]
    )
    return result


def export(source: Path, command: str, notes: dict) -> Path:
    """Ship ``source`` (a pre-trained ``model.pt`` of the quick preset) as the reference: re-saved with
    ``model.save_checkpoint`` (byte-reproducible) into the package, with its provenance. Returns the path."""
    from fourfold.core.files import atomic_write_text
    from fourfold.critical.model import count_parameters, load_checkpoint, save_checkpoint

    model, tokenizer, extra = load_checkpoint(source)
    spec = PretrainSpec(**extra["spec"]).validate()
    target = shipped_reference_path()
    save_checkpoint(target, model, tokenizer, extra)
    state = torch.load(target, map_location="cpu", weights_only=True)["state_dict"]
    record = {
        "file": REFERENCE_FILE,
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
    atomic_write_text(target.with_name(PROVENANCE_FILE), json.dumps(record, indent=2) + "\n")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
        print(f"shipped {export(args.export, args.command, args.notes)}")
    path = shipped_reference_path()
    check_file(path)
    info = provenance()
    print(f"{path}: sha256 {info['sha256']} as in its provenance; {info['spec_name']}, {info['command']}")
    if not args.verify:
        return 0
    if args.scratch:
        result = verify(args.scratch)
    else:
        with tempfile.TemporaryDirectory(prefix="critical-reference-") as tmp:
            result = verify(Path(tmp))
    print(json.dumps(result, indent=2))
    print("the retrained reference matches the shipped one" if result["matches"] else "MISMATCH")
    return 0 if result["matches"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

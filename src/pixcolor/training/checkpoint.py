"""Training checkpoints: one directory each, written atomically, safetensors + JSON only.

Layout of ``<run>/checkpoints/step-000000123/``::

    generator/            config.json + model.safetensors (a normal pretrained directory)
    discriminator/        the same, for the discriminator
    optimizers.safetensors  tensors of every optimizer / grad-scaler state
    rng.safetensors       torch CPU (and CUDA) generator states, NumPy's key array
    trainer_state.json    phase, epoch, step, best metric, history, the non-tensor parts

The directory is assembled under a temporary name and renamed into place, so a killed
run leaves either a complete checkpoint or none.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from pixcolor.errors import CheckpointError

__all__ = ["find_checkpoint", "list_checkpoints", "read_checkpoint", "write_checkpoint"]

_PREFIX = "step-"
STATE_NAME = "trainer_state.json"


def write_checkpoint(
    root: Path,
    step: int,
    *,
    models: dict[str, Any],
    optimizers: dict[str, torch.optim.Optimizer],
    scalers: dict[str, Any],
    state: dict[str, Any],
) -> Path:
    """Write a checkpoint directory ``root/step-<step>`` atomically and return its path."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_PREFIX}{step:09d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, model in models.items():
            model.save_pretrained(tmp / name)
        tensors, meta = _flatten_optimizers(optimizers, scalers)
        save_file(tensors, str(tmp / "optimizers.safetensors"))
        rng_tensors, rng_meta = _capture_rng()
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        payload = {**state, "optimizers": meta, "rng": rng_meta}
        (tmp / STATE_NAME).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        if final.exists():  # the same step written again (e.g. epoch end right after a step save)
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_checkpoint(
    path: Path,
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Return ``(state, optimizer_tensors, rng_tensors)`` of a checkpoint directory."""
    try:
        state = json.loads((path / STATE_NAME).read_text(encoding="utf-8"))
        optimizer_tensors = load_file(str(path / "optimizers.safetensors"))
        rng_tensors = load_file(str(path / "rng.safetensors"))
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a complete pixcolor training checkpoint: {err}"
        ) from err
    return state, optimizer_tensors, rng_tensors


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def find_checkpoint(resume: str | os.PathLike[str], run_dir: Path | None) -> Path:
    """Resolve ``resume``: ``"latest"`` (newest in ``run_dir``) or a checkpoint directory.

    Raises:
        CheckpointError: If there is nothing to resume from.
    """
    if str(resume) == "latest":
        if run_dir is None:
            raise CheckpointError("resume='latest' needs TrainerConfig.output_dir")
        found = list_checkpoints(run_dir / "checkpoints")
        if not found:
            raise CheckpointError(f"resume='latest': no checkpoint in {run_dir / 'checkpoints'}")
        return found[-1]
    path = Path(resume)
    if not (path / STATE_NAME).is_file():
        raise CheckpointError(
            f"resume must be 'latest' or a checkpoint directory holding {STATE_NAME}, got {str(path)!r}"
        )
    return path


def prune_checkpoints(root: Path, keep_last: int, keep: set[str]) -> None:
    """Delete all but the newest ``keep_last`` checkpoints and those named in ``keep``."""
    found = list_checkpoints(root)
    for path in found[: max(0, len(found) - keep_last)]:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def restore_optimizers(
    optimizers: dict[str, torch.optim.Optimizer],
    scalers: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> None:
    """Load what :func:`write_checkpoint` flattened back into live optimizers and scalers."""
    if set(meta["optimizers"]) != set(optimizers):
        raise CheckpointError(
            f"checkpoint has optimizers {sorted(meta['optimizers'])}, the trainer {sorted(optimizers)}"
        )
    for name, opt in optimizers.items():
        info = meta["optimizers"][name]
        state: dict[int, dict[str, Any]] = {}
        for pid_text, entries in info["state"].items():
            pid = int(pid_text)
            state[pid] = {}
            for key, value in entries.items():
                if value == "__tensor__":
                    state[pid][key] = tensors[f"{name}.{pid}.{key}"]
                else:
                    state[pid][key] = value
        opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    for name, scaler in scalers.items():
        scaler.load_state_dict(meta["scalers"][name])


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Put the Python, NumPy and torch random generators back as they were saved."""
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    np_meta = meta["numpy"]
    np.random.set_state(
        (
            np_meta["kind"],
            tensors["numpy"].numpy().astype(np.uint32),
            np_meta["pos"],
            np_meta["has_gauss"],
            np_meta["cached"],
        )
    )
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)


def _flatten_optimizers(
    optimizers: dict[str, torch.optim.Optimizer], scalers: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"optimizers": {}, "scalers": {}}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        state_meta: dict[str, dict[str, Any]] = {}
        for pid, entries in sd["state"].items():
            state_meta[str(pid)] = {}
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{name}.{pid}.{key}"] = value.detach().cpu().contiguous()
                    state_meta[str(pid)][key] = "__tensor__"
                else:
                    state_meta[str(pid)][key] = value
        meta["optimizers"][name] = {"state": state_meta, "param_groups": sd["param_groups"]}
    for name, scaler in scalers.items():
        meta["scalers"][name] = {
            k: (v.item() if isinstance(v, torch.Tensor) else v)
            for k, v in scaler.state_dict().items()
        }
    return tensors, meta


def _capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64)),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i:02d}"] = s
    version, internal, gauss = random.getstate()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "kind": kind,
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    return tensors, meta

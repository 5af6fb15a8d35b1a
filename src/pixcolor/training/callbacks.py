"""Callbacks change *when* things happen in :class:`~pixcolor.training.Trainer`.

Subclass :class:`Callback` and override the hooks you need; every hook receives the
trainer first. Set ``trainer.should_stop = True`` to end training after the current step.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pixcolor._atomic import write_atomically
from pixcolor.training.plots import plot_curves, save_grid

if TYPE_CHECKING:
    from pixcolor.training.trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "MetricsLogger", "SampleGrid"]

logger = logging.getLogger(__name__)


class Callback:
    """Base class: every hook does nothing."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch (after a resume has restored the state)."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Before each epoch's first step (also when a resumed epoch continues)."""

    def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        """After each optimizer step, with that step's losses."""

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After an epoch's validation, with the epoch's train and validation metrics."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After each finished epoch, before its checkpoint is written."""

    def on_save(self, trainer: Trainer, path: Path) -> None:
        """After a checkpoint directory has been written."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After training ends, for whatever reason."""


class EarlyStopping(Callback):
    """Stop when ``metric`` has not improved for ``patience`` epochs.

    Args:
        metric: Key of the epoch metrics, e.g. ``"val_l1"``.
        patience: Epochs without improvement tolerated.
        mode: ``"min"`` or ``"max"``.
        min_delta: Smallest change counted as an improvement.
    """

    def __init__(
        self, metric: str = "val_l1", patience: int = 5, mode: str = "min", min_delta: float = 0.0
    ):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.metric, self.patience, self.mode, self.min_delta = metric, patience, mode, min_delta
        self.best: float | None = None
        self.bad_epochs = 0

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.metric)
        if value is None:
            return
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            logger.info(
                "early stopping: %s has not improved for %d epochs", self.metric, self.bad_epochs
            )
            trainer.should_stop = True


class MetricsLogger(Callback):
    """Writes ``metrics.jsonl`` (one line per epoch), ``steps.jsonl`` (losses every
    ``every`` steps) and ``losses.png`` (their curves) into the run directory.

    On resume, lines written after the checkpoint being resumed are dropped, so the logs
    never hold a step twice.
    """

    def __init__(self, every: int = 10) -> None:
        self.every = every

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.run_dir is None or not trainer.is_main_process:
            return
        trainer.run_dir.mkdir(parents=True, exist_ok=True)
        step, epoch = trainer.state["global_step"], trainer.state["epoch"]
        _truncate_jsonl(trainer.run_dir / "steps.jsonl", lambda row: row["step"] <= step)
        _truncate_jsonl(trainer.run_dir / "metrics.jsonl", lambda row: row["epoch"] <= epoch)

    def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        step = trainer.state["global_step"]
        if trainer.run_dir is None or not trainer.is_main_process or step % self.every:
            return
        _append_jsonl(
            trainer.run_dir / "steps.jsonl", {"step": step, "epoch": trainer.state["epoch"], **logs}
        )

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if trainer.run_dir is None or not trainer.is_main_process:
            return
        _append_jsonl(trainer.run_dir / "metrics.jsonl", metrics)
        steps = _read_jsonl(trainer.run_dir / "steps.jsonl")
        curves: dict[str, list[tuple[float, float]]] = {}
        for row in steps:
            for key, value in row.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)):
                    curves.setdefault(key, []).append((row["step"], value))
        for row in _read_jsonl(trainer.run_dir / "metrics.jsonl"):
            for key, value in row.items():
                if key.startswith("val_") and isinstance(value, (int, float)):
                    curves.setdefault(key, []).append((row["global_step"], value))
        if curves:
            plot_curves(curves, trainer.run_dir / "losses.png")


class SampleGrid(Callback):
    """Saves ``samples/epoch-XXXX.png`` after each epoch: rows of gray | prediction | truth
    for the first ``n`` validation images (training images when there is no validation set).
    """

    def __init__(self, n: int = 6) -> None:
        self.n = n

    @torch.no_grad()
    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if trainer.run_dir is None or not trainer.is_main_process:
            return
        from pixcolor.data import batch_to_rgb, prepare_batch

        dataset = trainer.val_set if trainer.val_set is not None else trainer.train_set
        if dataset is None:
            return
        with torch.random.fork_rng(devices=[]):  # augmentation must not disturb training's RNG
            torch.manual_seed(0)
            rgb = torch.stack([dataset[i] for i in range(min(self.n, len(dataset)))])  # type: ignore[arg-type]
        const = trainer.lab_constants
        light, _ = prepare_batch(rgb, **const, device=trainer.device)
        was_training = trainer.generator.training
        trainer.generator.eval()
        fake_ab = trainer.generator(light).float()
        trainer.generator.train(was_training)
        gray = batch_to_rgb(light, torch.zeros_like(fake_ab), **const)
        fake = batch_to_rgb(light, fake_ab, **const)
        truth = rgb.float() / 255
        rows = [[g, f, t] for g, f, t in zip(gray.cpu(), fake.cpu(), truth, strict=True)]
        save_grid(rows, trainer.run_dir / "samples" / f"epoch-{trainer.state['epoch']:04d}.png")


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(clean) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
    return rows


def _truncate_jsonl(path: Path, keep: Any) -> None:
    if not path.is_file():
        return
    rows = [row for row in _read_jsonl(path) if keep(row)]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

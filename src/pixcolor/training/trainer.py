"""The pix2pix Trainer: L1-only warm-up of the generator, then L1 * lambda + GAN.

Subclass :class:`Trainer` to change *what* happens (``configure_optimizers``,
``training_step``, ``generator_loss``, ``discriminator_loss``, ``validation_step``);
pass :class:`~pixcolor.training.callbacks.Callback` objects to change *when* things happen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from pixcolor._atomic import write_atomically
from pixcolor.data import PhotoFolder, batch_to_rgb, lab_constants, prepare_batch
from pixcolor.metrics import colorfulness, psnr
from pixcolor.models import PatchDiscriminator, UNetGenerator
from pixcolor.training import checkpoint as ckpt
from pixcolor.training import runtime
from pixcolor.training.callbacks import Callback, MetricsLogger, SampleGrid
from pixcolor.training.config import TrainerConfig
from pixcolor.training.hints import HintLayouts, discriminator_sees_hints, hint_error, hint_planes
from pixcolor.training.losses import GANLoss, chroma_loss, l1_loss
from pixcolor.training.sampling import IndexDataset, ResumableSampler, SeededDataset
from pixcolor.training.schedule import lr_factor

__all__ = ["Batch", "Trainer", "TrainerConfig"]

logger = logging.getLogger(__name__)


class Batch(NamedTuple):
    """A training batch on the device: normalised ``lightness`` (B, 1, H, W), ``ab`` (B, 2, H, W)
    and, for a hint model, simulated ``hints`` planes (B, 3, H, W) (else ``None``)."""

    lightness: torch.Tensor
    ab: torch.Tensor
    hints: torch.Tensor | None = None


class Trainer:
    """Trains a generator (and, in the GAN phase, a discriminator) pix2pix-style.

    Args:
        generator: The :class:`~pixcolor.UNetGenerator` to train.
        discriminator: The :class:`~pixcolor.PatchDiscriminator`; needed when
            ``config.gan_epochs > 0``.
        config: The run's :class:`TrainerConfig`.
        callbacks: Extra callbacks. With ``output_dir`` set, a :class:`MetricsLogger` and a
            :class:`SampleGrid` are added unless one of that type is given.

    Attributes:
        state: ``phase``, ``epoch``, ``step_in_epoch`` (optimizer steps), ``global_step``,
            ``best``, ``history`` (one dict of metrics per finished epoch).
        should_stop: Set it (from a callback) to end :meth:`fit` after the current step;
            under DistributedDataParallel every rank stops when any rank sets it.
        lab_constants: ``l_center``, ``l_scale``, ``ab_scale`` of the generator's config.

    A hint model (``generator.hint_channels > 0``) trains with simulated hints (the
    ``hint_*`` settings of :class:`TrainerConfig`, :mod:`pixcolor.training.hints`); the
    discriminator sees the hint planes too if it takes ``3 + hint_channels`` channels.

    Example:
        >>> import pixcolor
        >>> gen = pixcolor.UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
        >>> trainer = pixcolor.Trainer(gen, None, pixcolor.TrainerConfig(pretrain_epochs=1, gan_epochs=0))
        >>> trainer.phase_of(0)
        'pretrain'
    """

    def __init__(
        self,
        generator: UNetGenerator,
        discriminator: PatchDiscriminator | None = None,
        config: TrainerConfig | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.config = config or TrainerConfig()
        if self.config.gan_epochs > 0 and discriminator is None:
            raise ValueError(f"gan_epochs={self.config.gan_epochs} needs a discriminator, got None")
        if self.config.image_size % generator.stride:
            raise ValueError(
                f"image_size must be a multiple of the generator's stride {generator.stride}, "
                f"got {self.config.image_size}"
            )
        self._d_sees_hints = discriminator_sees_hints(generator, discriminator)
        self.generator = generator
        self.discriminator = discriminator
        self.gan_loss = GANLoss(self.config.gan_mode, real_label=self.config.real_label)
        self.callbacks = list(callbacks)
        self.run_dir = Path(self.config.output_dir) if self.config.output_dir else None
        if self.run_dir is not None:
            for cls in (MetricsLogger, SampleGrid):
                if not any(isinstance(cb, cls) for cb in self.callbacks):
                    self.callbacks.append(cls())
        self.device = runtime.pick_device(self.config.device)
        self.rank, self.world_size = runtime.dist_info()
        self.state: dict[str, Any] = {
            "phase": self.phase_of(0), "epoch": 0, "step_in_epoch": 0, "global_step": 0,
            "best": None, "best_checkpoint": None, "history": [],
        }  # fmt: skip
        self.should_stop = False
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._base_lrs: dict[str, list[float]] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.lab_constants = lab_constants(generator)
        self._g: nn.Module = generator
        self._d_pair: nn.Module | None = None
        self._micro = 0
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    # ------------------------------------------------------------------ public API
    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (the only process that writes files and logs)."""
        return self.rank == 0

    @property
    def total_epochs(self) -> int:
        return self.config.pretrain_epochs + self.config.gan_epochs

    def phase_of(self, epoch: int) -> str:
        """``"pretrain"`` for the first ``pretrain_epochs`` epochs, ``"gan"`` after."""
        return "pretrain" if epoch < self.config.pretrain_epochs else "gan"

    def fit(
        self,
        train: Dataset | str | os.PathLike[str],
        val: Dataset | str | os.PathLike[str] | None = None,
        resume: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Train until all epochs are done, ``max_steps`` is reached or a callback stops it.

        Args:
            train: A folder of photos, or a dataset of ``(3, H, W)`` uint8 RGB tensors.
            val: The same for validation (centre crops), or ``None``.
            resume: ``"latest"`` (newest checkpoint in ``output_dir``) or a checkpoint
                directory: continue exactly where it was written.

        Returns:
            :attr:`state`.
        """
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.train_set = train_set = self._as_dataset(train, train=True)
        self.val_set = val_set = self._as_dataset(val, train=False) if val is not None else None
        self.generator.to(self.device)
        if self.discriminator is not None:
            self.discriminator.to(self.device)
        if cfg.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            if self.discriminator is not None:
                self.discriminator.to(memory_format=torch.channels_last)
        if resume is not None:
            self.load_checkpoint(ckpt.find_checkpoint(resume, self.run_dir))
        elif self.run_dir is not None and self.is_main_process:
            self._write_run_config()
        self._wrap_models()
        self._emit("on_fit_start")
        while self.state["epoch"] < self.total_epochs and not self.should_stop:
            self._run_epoch(train_set, val_set)
        if self.run_dir is not None and self.is_main_process:
            self.generator.save_pretrained(self.run_dir / "generator")
        self._emit("on_fit_end")
        return self.state

    def configure_optimizers(self, phase: str) -> dict[str, torch.optim.Optimizer]:
        """Optimizers of a phase: ``{"generator": Adam}`` in the warm-up, plus
        ``"discriminator"`` in the GAN phase (Adam, ``betas`` from the config)."""
        cfg = self.config
        if phase == "pretrain":
            return {
                "generator": torch.optim.Adam(
                    self.generator.parameters(), cfg.pretrain_lr, cfg.betas
                )
            }
        assert self.discriminator is not None
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), cfg.lr_g, cfg.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), cfg.lr_d, cfg.betas),
        }

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One micro-batch: forward, losses, backward (the optimizer step is done by the loop).

        Returns:
            Detached losses to log, e.g. ``{"g_loss", "l1", "gan", "d_loss"}``.
        """
        scale = 1.0 / self.config.grad_accum_steps
        with self._autocast():
            fake_ab = self._g(batch.lightness, batch.hints)
        logs: dict[str, torch.Tensor] = {}
        if self.state["phase"] == "gan":
            runtime.set_requires_grad(self.discriminator, True)
            with self._autocast():
                d_losses = self.discriminator_loss(batch, fake_ab.detach())
            self._backward(d_losses["loss"] * scale, "discriminator")
            if self._last_micro_batch():  # as in pix2pix: D steps before G's adversarial loss
                self._step("discriminator")
            logs.update({f"d_{k}": v.detach() for k, v in d_losses.items()})
            runtime.set_requires_grad(self.discriminator, False)
        with self._autocast():
            g_losses = self.generator_loss(batch, fake_ab)
        self._backward(g_losses["loss"] * scale, "generator")
        logs.update({f"g_{k}" if k == "loss" else k: v.detach() for k, v in g_losses.items()})
        return logs

    def generator_loss(self, batch: Batch, fake_ab: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "l1"}`` in the warm-up; ``{"loss", "l1", "gan"}`` with
        ``loss = lambda_l1 * l1 + gan`` in the GAN phase; plus ``"chroma"`` (weighted like
        L1) when ``chroma_weight`` is set. Override to add terms."""
        l1 = l1_loss(fake_ab, batch.ab)
        losses = {"l1": l1}
        if self.state["phase"] == "pretrain":
            total = l1
        else:
            assert self.discriminator is not None
            logits = self.discriminator(self._pair(batch, fake_ab))
            losses["gan"] = self.gan_loss.generator(logits)
            total = self.config.lambda_l1 * l1 + losses["gan"]
        if self.config.chroma_weight:
            losses["chroma"] = chroma_loss(fake_ab, batch.ab)
            scale = 1.0 if self.state["phase"] == "pretrain" else self.config.lambda_l1
            total = total + self.config.chroma_weight * scale * losses["chroma"]
        return {"loss": total, **losses}

    def discriminator_loss(self, batch: Batch, fake_ab: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "real", "fake"}``: the GAN loss of real pairs vs generated pairs.

        ``fake_ab`` is already detached. Real and fake pairs go through the discriminator
        as separate batches (their own batch-norm statistics), as in pix2pix.
        """
        assert self._d_pair is not None
        real_logits, fake_logits = self._d_pair(
            self._pair(batch, batch.ab), self._pair(batch, fake_ab)
        )
        loss = self.gan_loss.discriminator(real_logits, fake_logits)
        return {"loss": loss, "real": real_logits.mean(), "fake": fake_logits.mean()}

    @torch.no_grad()
    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-batch validation metrics without hints: ``val_l1`` (normalised ab), ``val_psnr``
        (RGB, dB) and the mean colourfulness of predictions and truth (the epoch adds
        ``val_delta_cf``); with ``batch.hints``, also ``val_l1_hints``, ``val_psnr_hints`` and
        ``val_hint_error`` (mean ``|ab - hint|`` at hinted pixels, Lab units)."""
        real = batch_to_rgb(batch.lightness, batch.ab, **self.lab_constants)
        metrics = {"val_colorfulness_truth": colorfulness(real).mean()}
        for suffix, hints in (("", None), ("_hints", batch.hints)):
            if suffix and hints is None:
                break
            with self._autocast():
                fake_ab = self.generator(batch.lightness, hints).float()
            fake = batch_to_rgb(batch.lightness, fake_ab, **self.lab_constants)
            metrics[f"val_l1{suffix}"] = l1_loss(fake_ab, batch.ab)
            # identical images: 100 dB, not inf
            metrics[f"val_psnr{suffix}"] = psnr(fake, real).clamp(max=100.0).mean()
            metrics[f"val_colorfulness{suffix}"] = colorfulness(fake).mean()
        if batch.hints is not None:
            errors = hint_error(fake_ab, batch.hints) * self.lab_constants["ab_scale"]
            metrics["val_hint_error"] = errors.nanmean()  # nan without hints: not averaged
        return metrics

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of everything needed to continue exactly (rank 0 only)."""
        if self.run_dir is None or not self.is_main_process:
            return None
        models = {"generator": self.generator}
        if self.discriminator is not None:
            models["discriminator"] = self.discriminator
        path = ckpt.write_checkpoint(
            self.run_dir / "checkpoints",
            self.state["global_step"],
            models=models,
            optimizers=self.optimizers,
            scalers=self.scalers,
            state={"trainer": self.state, "config": dataclasses.asdict(self.config)},
        )
        keep = {self.state["best_checkpoint"]} if self.state["best_checkpoint"] else set()
        ckpt.prune_checkpoints(self.run_dir / "checkpoints", self.config.keep_last, keep)
        self._emit("on_save", path)
        return path

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore models, optimizers, scalers, RNG and trainer state from ``path``."""
        path = Path(path)
        meta, opt_tensors, rng_tensors = ckpt.read_checkpoint(path)
        self._load_weights(path / "generator", self.generator)
        if self.discriminator is not None and (path / "discriminator").is_dir():
            self._load_weights(path / "discriminator", self.discriminator)
        self.state = meta["trainer"]
        self._make_optimizers(self.state["phase"])
        self.scalers = self._make_scalers(self.state["phase"])
        ckpt.restore_optimizers(self.optimizers, self.scalers, opt_tensors, meta["optimizers"])
        ckpt.restore_rng(rng_tensors, meta["rng"])
        logger.info(
            "resumed from %s (epoch %d, step %d)",
            path,
            self.state["epoch"],
            self.state["global_step"],
        )

    # ------------------------------------------------------------------ the loop
    def _run_epoch(self, train_set: Dataset, val_set: Dataset | None) -> None:
        cfg, state = self.config, self.state
        phase = self.phase_of(state["epoch"])
        if phase != state["phase"] or not self.optimizers:
            if phase != state["phase"]:
                state.update(phase=phase)
            self._make_optimizers(phase)
            self.scalers = self._make_scalers(phase)
        self.generator.train()
        if self.discriminator is not None:
            self.discriminator.train()
        self._emit("on_epoch_start")
        loader = self._loader(
            train_set, train=True, epoch=state["epoch"], start_step=state["step_in_epoch"]
        )
        # The loader of a run resumed mid-epoch skips the batches already done: count them.
        steps_per_epoch = len(loader) // cfg.grad_accum_steps + state["step_in_epoch"]
        if steps_per_epoch == 0:
            raise ValueError(
                f"the training set has {len(train_set)} photos: too few for batch_size={cfg.batch_size} "
                f"x grad_accum_steps={cfg.grad_accum_steps} x {self.world_size} process(es)"
            )
        # The epoch's running sums of the step logs live in the state, so that a checkpoint
        # written mid-epoch carries them and the epoch's means stay right after a resume.
        if state["step_in_epoch"] == 0:
            state["running"] = {}
        running = state.setdefault("running", {})
        bar = tqdm(
            total=steps_per_epoch, initial=state["step_in_epoch"], disable=not (cfg.progress and self.is_main_process),
            desc=f"epoch {state['epoch'] + 1}/{self.total_epochs} ({phase})", leave=False, dynamic_ncols=True,
        )  # fmt: skip
        for item in loader:
            batch = self._make_batch(item, channels_last=cfg.channels_last)
            self._apply_lr_decay(steps_per_epoch)
            logs = self.training_step(batch)
            self._micro += 1
            if self._micro % cfg.grad_accum_steps:
                continue
            self._step("generator")
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            values = {k: float(v) for k, v in logs.items()}
            for k, v in values.items():
                running[k] = running.get(k, 0.0) + v
            bar.update(1)
            bar.set_postfix(
                {k: f"{v:.4f}" for k, v in values.items() if k in ("g_loss", "d_loss", "l1", "gan")}
            )
            self._emit("on_step_end", values)
            if cfg.max_steps and state["global_step"] >= cfg.max_steps:
                self.should_stop = True
            if self.world_size > 1:  # one rank stopping alone would leave the others waiting
                flag = torch.tensor([float(self.should_stop)], device=self.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                self.should_stop = bool(flag.item())
            if state["step_in_epoch"] >= steps_per_epoch or self.should_stop:
                break
            if cfg.save_every_steps and state["global_step"] % cfg.save_every_steps == 0:
                self.save_checkpoint()
        bar.close()
        if state["step_in_epoch"] < steps_per_epoch:  # stopped early: keep position, save
            self.save_checkpoint()
            return
        metrics = {f"train_{k}": v / state["step_in_epoch"] for k, v in running.items()}
        metrics.update(self._validate(val_set) if val_set is not None else {})
        metrics.update(epoch=state["epoch"] + 1, phase=phase, global_step=state["global_step"])
        state["history"].append(metrics)
        self._emit("on_validation_end", metrics)
        self._update_best(metrics)
        state.update(epoch=state["epoch"] + 1, step_in_epoch=0)
        self._emit("on_epoch_end", metrics)
        self.save_checkpoint()

    def _make_optimizers(self, phase: str) -> None:
        """:meth:`configure_optimizers`, remembering each group's base learning rate."""
        self.optimizers = self.configure_optimizers(phase)
        self._base_lrs = {
            name: [group["lr"] for group in opt.param_groups]
            for name, opt in self.optimizers.items()
        }

    def _apply_lr_decay(self, steps_per_epoch: int) -> None:
        """Set every optimizer's rate for the coming step from ``config.lr_decay``."""
        cfg, state = self.config, self.state
        if cfg.lr_decay == "none":
            return
        pretrain = state["phase"] == "pretrain"
        first_epoch = 0 if pretrain else cfg.pretrain_epochs
        epochs = cfg.pretrain_epochs if pretrain else cfg.gan_epochs
        step = (state["epoch"] - first_epoch) * steps_per_epoch + state["step_in_epoch"]
        factor = lr_factor(cfg.lr_decay, step, epochs * steps_per_epoch)
        for name, opt in self.optimizers.items():
            for group, base in zip(opt.param_groups, self._base_lrs[name], strict=True):
                group["lr"] = base * factor

    def _last_micro_batch(self) -> bool:
        """True while the current micro-batch completes an accumulation cycle."""
        return (self._micro + 1) % self.config.grad_accum_steps == 0

    def _step(self, name: str) -> None:
        opt, scaler = self.optimizers[name], self.scalers.get(name)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)

    def _backward(self, loss: torch.Tensor, name: str) -> None:
        scaler = self.scalers.get(name)
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def _validate(self, val_set: Dataset) -> dict[str, float]:
        self.generator.eval()
        totals: dict[str, float] = {}
        count = 0
        loader = self._loader(val_set, train=False, epoch=0, start_step=0)
        bar = not (self.config.progress and self.is_main_process)
        for item in tqdm(loader, desc="validation", leave=False, disable=bar):
            batch = self._make_batch(item)
            for k, v in self.validation_step(batch).items():
                totals[k] = totals.get(k, 0.0) + float(v) * len(batch.ab)
            count += len(batch.ab)
        self.generator.train()
        if self.world_size > 1:
            packed = torch.tensor(
                [*totals.values(), count], dtype=torch.float64, device=self.device
            )
            dist.all_reduce(packed)
            totals, count = dict(zip(totals, packed[:-1].tolist(), strict=True)), int(packed[-1])
        metrics = {k: v / max(count, 1) for k, v in totals.items()}
        if "val_colorfulness" in metrics and "val_colorfulness_truth" in metrics:
            metrics["val_delta_cf"] = abs(
                metrics["val_colorfulness"] - metrics["val_colorfulness_truth"]
            )
        return metrics

    def _update_best(self, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.config.best_metric)
        if value is None or not math.isfinite(value):
            return
        best = self.state["best"]
        better = best is None or (value < best if self.config.best_mode == "min" else value > best)
        if better:
            self.state["best"] = value
            self.state["best_checkpoint"] = f"step-{self.state['global_step']:09d}"
            if self.run_dir is not None and self.is_main_process:
                self.generator.save_pretrained(self.run_dir / "best" / "generator")

    # ------------------------------------------------------------------ plumbing
    def _as_dataset(self, data: Dataset | str | os.PathLike[str], train: bool) -> Dataset:
        if isinstance(data, (str, os.PathLike)):
            return PhotoFolder(data, size=self.config.image_size, train=train)
        if isinstance(data, DataLoader):
            raise TypeError(
                "pass a Dataset or a folder, not a DataLoader: the Trainer builds its own loaders"
            )
        return data

    def _make_batch(self, item: Any, channels_last: bool = False) -> Batch:
        """A loader's item (uint8 RGB, or RGB and hint layouts) as a :class:`Batch` on the device."""
        rgb, layout = item if isinstance(item, (list, tuple)) else (item, None)
        light, ab = prepare_batch(
            rgb, **self.lab_constants, device=self.device, channels_last=channels_last
        )
        return Batch(light, ab, hint_planes(ab, layout) if layout is not None else None)

    def _pair(self, batch: Batch, ab: torch.Tensor) -> torch.Tensor:
        """What the discriminator judges: L, ab, and the hint planes if it sees them."""
        hints = [batch.hints] if self._d_sees_hints and batch.hints is not None else []
        return torch.cat([batch.lightness, ab, *hints], dim=1)

    def _loader(self, dataset: Dataset, train: bool, epoch: int, start_step: int) -> DataLoader:
        cfg = self.config
        if self.generator.hint_channels:  # validation: the same hints every epoch
            dataset = HintLayouts(
                dataset, cfg.hint_simulation(not train), None if train else cfg.seed
            )
        sampler = ResumableSampler(
            len(dataset), shuffle=train, seed=cfg.seed, epoch=epoch, rank=self.rank,
            world_size=self.world_size, skip=start_step * cfg.batch_size * cfg.grad_accum_steps,
        )  # fmt: skip
        # A generator of its own: a DataLoader without one draws its base seed from torch's
        # global RNG each time it is iterated, and a resumed run iterates it after restoring
        # that RNG, which then gave later steps (dropout) other random numbers.
        return DataLoader(
            SeededDataset(dataset, cfg.seed) if train else IndexDataset(dataset),
            batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
            drop_last=train, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch),
        )  # fmt: skip

    def _wrap_models(self) -> None:
        g: nn.Module = self.generator
        pair: nn.Module | None = (
            runtime.DiscriminatorPair(self.discriminator)
            if self.discriminator is not None
            else None
        )
        if self.config.compile:
            g = torch.compile(g)  # type: ignore[assignment]
            pair = torch.compile(pair) if pair is not None else None  # type: ignore[assignment]
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            g = nn.parallel.DistributedDataParallel(g, device_ids=ids)
            if pair is not None:
                pair = nn.parallel.DistributedDataParallel(pair, device_ids=ids)
        self._g, self._d_pair = g, pair

    def _make_scalers(self, phase: str) -> dict[str, torch.amp.GradScaler]:
        if self.config.precision != "fp16":
            return {}
        names = ["generator"] + (["discriminator"] if phase == "gan" else [])
        return {n: torch.amp.GradScaler(self.device.type) for n in names}

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return runtime.autocast(self.config.precision, self.device)

    def _load_weights(self, directory: Path, model: nn.Module) -> None:
        loaded = type(model).from_pretrained(directory)  # type: ignore[attr-defined]
        model.load_state_dict(loaded.state_dict(), strict=True)

    def _write_run_config(self) -> None:
        assert self.run_dir is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "trainer": dataclasses.asdict(self.config),
            "generator": self.generator.config_dict(),
            "discriminator": self.discriminator.config_dict()
            if self.discriminator is not None
            else None,
        }
        text = json.dumps(payload, indent=2) + "\n"
        write_atomically(
            self.run_dir / "config.json", lambda tmp: tmp.write_text(text, encoding="utf-8")
        )

    def _emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

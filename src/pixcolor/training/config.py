"""TrainerConfig: every setting of a :class:`~pixcolor.Trainer` run, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass

from pixcolor.training.hints import HintSimulation
from pixcolor.training.losses import GAN_MODES
from pixcolor.training.schedule import LR_DECAYS

__all__ = ["TrainerConfig"]

_PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class TrainerConfig:
    """Everything that defines a training run; saved beside its outputs as ``config.json``.

    Args:
        pretrain_epochs: Epochs of L1-only generator training (the warm-up).
        gan_epochs: Epochs of ``lambda_l1 * L1 + GAN`` afterwards.
        batch_size: Samples per optimizer step and process (before accumulation).
        image_size: Side of the square training crops.
        pretrain_lr: Generator learning rate in the warm-up (1e-4 in the seeds).
        lr_g: Generator learning rate in the GAN phase.
        lr_d: Discriminator learning rate.
        lr_decay: ``"none"`` (constant rates), ``"linear"`` or ``"cosine"``: within each
            phase, every optimizer's rate decays from its base value towards 0 at the
            phase's end (a pure function of the step, so resuming is exact).
        betas: Adam betas of every optimizer.
        lambda_l1: Weight of the L1 term in the GAN phase.
        chroma_weight: Weight of a colourfulness target in both phases: the mean absolute
            difference between each image's mean predicted chroma ``sqrt(a^2 + b^2)`` and its
            true one (normalised units). L1 alone predicts the median colour and drifts to
            sepia; this term asks for the right amount of colour without fixing its hue.
        gan_mode: ``"vanilla"``, ``"lsgan"`` or ``"hinge"``.
        real_label: Discriminator target for real patches (0.9: one-sided label smoothing).
        grad_accum_steps: Micro-batches accumulated per optimizer step.
        precision: ``"fp32"``, or on CUDA ``"bf16"`` / ``"fp16"`` (with a gradient scaler).
        channels_last: Use the channels-last memory format.
        compile: Wrap the networks in :func:`torch.compile`.
        num_workers: DataLoader worker processes.
        seed: Seeds weights-independent randomness: data order, augmentation, dropout.
        device: ``"cuda"``, ``"cpu"``, ...; ``None`` picks CUDA when available.
        output_dir: Run directory for checkpoints, logs and samples (``None``: write nothing).
        save_every_steps: Also checkpoint every this many optimizer steps (0: epoch ends only).
        keep_last: Checkpoints kept besides the best one.
        best_metric: Validation metric whose best checkpoint is kept (``"val_l1"``).
        best_mode: ``"min"`` or ``"max"`` for ``best_metric``.
        max_steps: Stop after this many optimizer steps in all (0: no limit).
        progress: Show tqdm bars.
        hint_none_fraction: Hint models only (``hint_channels=3``; an automatic model
            ignores every ``hint_*`` setting): share of training samples with no hint.
        hint_mean_count: Mean number of simulated hints of the other samples (``1 +``
            geometric, clipped at ``hint_max_count``); see
            :class:`~pixcolor.training.hints.HintSimulation`.
        hint_max_count: Most simulated hints per sample.
        hint_patch_sizes: ``(smallest, largest)`` side in pixels of a hint's square patch,
            whose value is the patch's mean true ab.
        hint_val_count: Hints per validation photo (drawn once, the same every epoch) for
            the ``val_*_hints`` metrics; the plain ``val_*`` metrics are without hints.
    """

    pretrain_epochs: int = 20
    gan_epochs: int = 20
    batch_size: int = 16
    image_size: int = 256
    pretrain_lr: float = 1e-4
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_decay: str = "none"
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_l1: float = 100.0
    chroma_weight: float = 0.0
    gan_mode: str = "vanilla"
    real_label: float = 1.0
    grad_accum_steps: int = 1
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    num_workers: int = 2
    seed: int = 0
    device: str | None = None
    output_dir: str | None = None
    save_every_steps: int = 0
    keep_last: int = 2
    best_metric: str = "val_l1"
    best_mode: str = "min"
    max_steps: int = 0
    progress: bool = True
    hint_none_fraction: float = 0.1
    hint_mean_count: float = 12.0
    hint_max_count: int = 48
    hint_patch_sizes: tuple[int, int] = (1, 5)
    hint_val_count: int = 10

    def hint_simulation(self, validation: bool = False) -> HintSimulation:
        """The hint distribution of training (or, with ``validation``, of validation)."""
        return HintSimulation(
            none_fraction=self.hint_none_fraction,
            mean_count=self.hint_mean_count,
            max_count=max(self.hint_max_count, self.hint_val_count),
            patch_sizes=self.hint_patch_sizes,
            count=self.hint_val_count if validation else None,
        )

    def __post_init__(self) -> None:
        for name in (
            "pretrain_epochs",
            "gan_epochs",
            "save_every_steps",
            "max_steps",
            "num_workers",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("batch_size", "image_size", "grad_accum_steps", "keep_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.gan_mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {self.gan_mode!r}")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {self.lr_decay!r}")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {self.best_mode!r}")
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        self.hint_patch_sizes = tuple(self.hint_patch_sizes)  # type: ignore[assignment]
        if self.hint_val_count < 0:
            raise ValueError(f"hint_val_count must be >= 0, got {self.hint_val_count!r}")
        self.hint_simulation()  # raises for a bad hint_* value

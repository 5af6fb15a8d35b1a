"""Simulated colour hints for training hint models (``UNetConfig.hint_channels=3``).

A user's hint is a click: a position and the colour there. Training imitates it from the
truth (Zhang, Zhu et al., "Real-Time User-Guided Image Colorization with Learned Deep
Priors", 2017): per photo a random number of hints (none for a share of the photos, so the
model keeps colorizing on its own; otherwise geometric), at uniformly random positions, each
a small square patch whose value is the mean true ab of that patch.

The draw is split in two so that it stays exact on resume and cheap:

* :class:`HintLayouts` wraps a dataset and draws each sample's *layout* (positions and patch
  sizes, no colours) in the DataLoader worker, from the RNG that
  :class:`~pixcolor.training.sampling.SeededDataset` seeds per ``(seed, epoch, index)``;
* :func:`hint_planes` turns a batch of layouts into the hint planes on the training device,
  from the batch's true ab.

Example:
    >>> import torch
    >>> ab = torch.zeros(1, 2, 8, 8)
    >>> ab[0, 0, :, 4:] = 0.5                       # a/ab_scale = 0.5 on the right half
    >>> layout = torch.tensor([[[2, 5, 3]]])        # one 3x3 hint centred at y=2, x=5
    >>> planes = hint_planes(ab, layout)
    >>> planes[0, :, 2, 5].tolist(), int(planes[0, 2].sum())
    ([0.5, 0.0, 1.0], 9)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

__all__ = [
    "HintLayouts",
    "HintSimulation",
    "discriminator_sees_hints",
    "draw_hint_layout",
    "hint_error",
    "hint_planes",
]


@dataclass(frozen=True)
class HintSimulation:
    """How many hints a training sample gets, and how big they are.

    Args:
        none_fraction: Share of samples with no hint at all (automatic colorization).
        mean_count: Mean number of hints of the other samples: ``1 + Geometric``, so 1 is
            the most likely count and the tail is long.
        max_count: Most hints per sample (the geometric draw is clipped there).
        patch_sizes: ``(smallest, largest)`` side of a hint's square patch, in pixels of the
            training crop; each hint's side is uniform in that range.
        count: A fixed number of hints per sample instead of the random one (validation).

    Raises:
        ValueError: If a value is out of range.
    """

    none_fraction: float = 0.1
    mean_count: float = 12.0
    max_count: int = 48
    patch_sizes: tuple[int, int] = (1, 5)
    count: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.none_fraction <= 1.0:
            raise ValueError(f"hint none_fraction must be in [0, 1], got {self.none_fraction!r}")
        if not isinstance(self.max_count, int) or self.max_count < 1:
            raise ValueError(f"hint max_count must be a positive int, got {self.max_count!r}")
        if not self.mean_count >= 1.0:
            raise ValueError(f"hint mean_count must be >= 1, got {self.mean_count!r}")
        low, high = self.patch_sizes
        if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
            raise ValueError(
                f"hint patch_sizes must be (smallest, largest) with 1 <= smallest <= largest, "
                f"got {self.patch_sizes!r}"
            )
        if self.count is not None and not 0 <= self.count <= self.max_count:
            raise ValueError(
                f"hint count must be in [0, max_count={self.max_count}], got {self.count!r}"
            )


def draw_hint_layout(
    height: int,
    width: int,
    simulation: HintSimulation,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one sample's hint positions and patch sizes.

    Args:
        height: Height of the image the hints are for.
        width: Its width.
        simulation: The distribution to draw from.
        generator: RNG to draw from; ``None`` uses torch's global RNG (which
            :class:`~pixcolor.training.sampling.SeededDataset` seeds per sample).

    Returns:
        ``(max_count, 3)`` int64 rows ``(y, x, side)``: the patch's centre pixel and side;
        rows with side 0 are unused. Used rows come first.

    Example:
        >>> sim = HintSimulation(count=2, max_count=4, patch_sizes=(3, 3))
        >>> layout = draw_hint_layout(32, 32, sim, torch.Generator().manual_seed(0))
        >>> layout.shape, layout[:, 2].tolist()
        (torch.Size([4, 3]), [3, 3, 0, 0])
    """
    sim = simulation
    if sim.count is not None:
        count = sim.count
    elif torch.rand((), generator=generator).item() < sim.none_fraction:
        count = 0
    else:
        count = 1 + _geometric(sim.mean_count - 1.0, generator)
    count = min(count, sim.max_count)
    layout = torch.zeros(sim.max_count, 3, dtype=torch.int64)
    if count:
        layout[:count, 0] = torch.randint(0, height, (count,), generator=generator)
        layout[:count, 1] = torch.randint(0, width, (count,), generator=generator)
        low, high = sim.patch_sizes
        layout[:count, 2] = torch.randint(low, high + 1, (count,), generator=generator)
    return layout


class HintLayouts(Dataset):
    """A dataset of images ``(C, H, W)`` whose items become ``(image, layout)``.

    The layout (see :func:`draw_hint_layout`) is drawn after the image, from torch's global
    RNG, or, with ``seed`` set, from an RNG seeded by ``(seed, index)`` (the same hints every
    epoch: validation).

    Args:
        dataset: The images.
        simulation: The hint distribution.
        seed: Fixed per-index seed; ``None`` draws from the global RNG.
    """

    def __init__(
        self, dataset: Dataset, simulation: HintSimulation, seed: int | None = None
    ) -> None:
        self.dataset, self.simulation, self.seed = dataset, simulation, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.dataset[index]
        generator = None
        if self.seed is not None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        height, width = image.shape[-2:]
        return image, draw_hint_layout(height, width, self.simulation, generator)


def hint_planes(ab: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """The hint planes of a batch: each hint's patch painted with the patch's mean true ab.

    Args:
        ab: True normalised ab ``(B, 2, H, W)``.
        layout: ``(B, K, 3)`` rows ``(y, x, side)`` as :func:`draw_hint_layout` gives
            (side 0: unused). A patch is clipped to the image; where patches overlap, the
            later one wins (as a later click would).

    Returns:
        ``(B, 3, H, W)``: hint ``a / ab_scale``, ``b / ab_scale``, mask; zeros elsewhere.
        Same dtype, device and memory format (contiguous or channels-last) as ``ab``.

    Raises:
        ValueError: If the shapes do not match.
    """
    if ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"ab must have shape (B, 2, H, W), got {tuple(ab.shape)}")
    if layout.dim() != 3 or layout.shape[0] != ab.shape[0] or layout.shape[2] != 3:
        raise ValueError(
            f"layout must have shape ({ab.shape[0]}, K, 3) for a batch of {ab.shape[0]}, "
            f"got {tuple(layout.shape)}"
        )
    height, width = ab.shape[-2:]
    planes = ab.new_zeros(ab.shape[0], 3, height, width)
    if not ab.is_contiguous() and ab.is_contiguous(memory_format=torch.channels_last):
        planes = planes.contiguous(memory_format=torch.channels_last)
    for b, y, x, side in _rows(layout):
        top, left = max(y - side // 2, 0), max(x - side // 2, 0)
        bottom, right = min(y - side // 2 + side, height), min(x - side // 2 + side, width)
        mean = ab[b, :, top:bottom, left:right].mean(dim=(1, 2))
        planes[b, :2, top:bottom, left:right] = mean[:, None, None]
        planes[b, 2, top:bottom, left:right] = 1.0
    return planes


def discriminator_sees_hints(generator: nn.Module, discriminator: nn.Module | None) -> bool:
    """Whether a discriminator judges the hint planes too: it takes ``3 + hint_channels``
    channels (L, ab and the planes) instead of 3.

    Raises:
        ValueError: If it takes another number of channels.
    """
    hint_channels = generator.config.hint_channels
    channels = discriminator.config.in_channels if discriminator is not None else 3
    if channels not in (3, 3 + hint_channels):
        raise ValueError(
            f"the discriminator takes {channels} channels; it needs 3 (L + ab) or "
            f"{3 + hint_channels} (L + ab + the generator's hint planes)"
        )
    return channels > 3


def hint_error(ab: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """How far a prediction is from its hints: mean ``|ab - hint|`` over hinted pixels and
    both channels, per image, in the units of ``ab`` (``nan`` for an image without hints).

    Args:
        ab: Predicted normalised ab ``(B, 2, H, W)``.
        planes: The hint planes it was given, ``(B, 3, H, W)``.

    Returns:
        ``(B,)``. Multiply by ``ab_scale`` for Lab units.
    """
    mask = planes[:, 2:3]
    diff = (ab - planes[:, :2]).abs() * mask
    return diff.sum(dim=(1, 2, 3)) / (2 * mask.sum(dim=(1, 2, 3)))


def _rows(layout: torch.Tensor) -> list[Any]:
    """``(b, y, x, side)`` for every used row of a ``(B, K, 3)`` layout."""
    used = layout[..., 2] > 0
    batch = used.nonzero()[:, 0]
    return [(int(b), *map(int, row)) for b, row in zip(batch, layout[used], strict=True)]


def _geometric(mean: float, generator: torch.Generator | None) -> int:
    """A geometric draw on ``{0, 1, ...}`` with the given mean (0 for a mean of 0)."""
    if mean <= 0:
        return 0
    p = 1.0 / (1.0 + mean)  # success probability: mean = (1 - p) / p
    u = torch.rand((), dtype=torch.float64, generator=generator).item()
    return math.floor(math.log1p(-u) / math.log1p(-p))

"""What makes a resumed run see exactly the data an uninterrupted one would.

The Trainer's loaders draw indices from :class:`ResumableSampler` (shuffled by
``(seed, epoch)``, sharded by rank, able to skip what was already seen) and seed each
sample's augmentation from ``(seed, epoch, index)`` with :class:`SeededDataset`, so neither
the worker count nor the point where a run restarts changes a single crop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

__all__ = ["IndexDataset", "ResumableSampler", "SeededDataset"]


class ResumableSampler(Sampler[tuple[int, int]]):
    """Shuffles with a generator seeded by ``(seed, epoch)``, shards by rank, and can skip
    the samples already seen: a resumed epoch yields exactly the rest of the original one.
    Yields ``(epoch, index)`` so that augmentation can be seeded per sample."""

    def __init__(
        self, n: int, *, shuffle: bool, seed: int, epoch: int, rank: int, world_size: int, skip: int
    ):
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, epoch
        self.rank, self.world_size, self.skip = rank, world_size, skip

    def _indices(self) -> list[int]:
        if self.shuffle:
            order = torch.randperm(
                self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            )
            indices = order.tolist()
        else:
            indices = list(range(self.n))
        per_rank = math.ceil(self.n / self.world_size)
        indices += indices[: per_rank * self.world_size - self.n]  # pad so every rank gets as many
        return indices[self.rank :: self.world_size][self.skip :]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, i) for i in self._indices()])

    def __len__(self) -> int:
        return len(self._indices())


class SeededDataset(Dataset):
    """Draws each sample's augmentation from an RNG seeded by ``(seed, epoch, index)``,
    independent of worker count and of where a resumed run restarts."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(((self.seed * 1_000_003 + epoch) * 10_000_019 + index) % (1 << 63))
            return self.dataset[index]


class IndexDataset(SeededDataset):
    """Validation: no augmentation randomness; ``(epoch, index)`` keys are unpacked."""

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset, 0)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        return self.dataset[key[1]]

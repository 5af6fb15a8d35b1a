"""Losses of pix2pix training: L1 on ab and three adversarial objectives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GAN_MODES", "GANLoss", "chroma_loss", "l1_loss"]

GAN_MODES = ("vanilla", "lsgan", "hinge")


def l1_loss(fake_ab: torch.Tensor, real_ab: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between predicted and true (normalised) ab."""
    return F.l1_loss(fake_ab, real_ab)


def chroma_loss(fake_ab: torch.Tensor, real_ab: torch.Tensor) -> torch.Tensor:
    """Colourfulness target: ``mean_b |mean chroma(fake_b) - mean chroma(real_b)|``.

    Chroma is ``sqrt(a^2 + b^2)`` per pixel, averaged over each image, so the term asks for
    as much colour as the truth has without saying which hue.

    Args:
        fake_ab: Predicted ab, ``(B, 2, H, W)``.
        real_ab: True ab, ``(B, 2, H, W)``.

    Example:
        >>> real = torch.zeros(1, 2, 4, 4); real[:, 0] = 0.3
        >>> round(chroma_loss(torch.zeros(1, 2, 4, 4), real).item(), 3)
        0.3
    """
    return (_mean_chroma(fake_ab) - _mean_chroma(real_ab)).abs().mean()


def _mean_chroma(ab: torch.Tensor) -> torch.Tensor:
    return (ab.float().pow(2).sum(dim=1) + 1e-8).sqrt().mean(dim=(1, 2))


class GANLoss(nn.Module):
    """Adversarial losses on PatchGAN logits.

    * ``"vanilla"``: binary cross-entropy with logits (pix2pix).
    * ``"lsgan"``: least squares on the raw outputs (Mao et al. 2017).
    * ``"hinge"``: ``relu(1 - D(real)) + relu(1 + D(fake))`` for D, ``-D(fake)`` for G.

    Args:
        mode: One of :data:`GAN_MODES`.
        real_label: Target for real patches in ``vanilla``/``lsgan`` (< 1 for one-sided
            label smoothing, e.g. 0.9).
        fake_label: Target for fake patches.

    Example:
        >>> loss = GANLoss("vanilla")
        >>> round(loss.discriminator(torch.full((1, 1, 2, 2), 9.0), torch.full((1, 1, 2, 2), -9.0)).item(), 4)
        0.0001
    """

    def __init__(self, mode: str = "vanilla", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"mode must be one of {GAN_MODES}, got {mode!r}")
        if not 0.0 <= fake_label < real_label <= 1.0:
            raise ValueError(
                f"labels must satisfy 0 <= fake_label < real_label <= 1, got {fake_label}, {real_label}"
            )
        self.mode = mode
        self.real_label = real_label
        self.fake_label = fake_label

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Discriminator loss: ``0.5 * (loss(real, real) + loss(fake, fake))``."""
        if self.mode == "hinge":
            return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())
        return 0.5 * (
            self._target(real_logits, self.real_label) + self._target(fake_logits, self.fake_label)
        )

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """Generator loss: fakes should be judged real (target 1, without smoothing)."""
        if self.mode == "hinge":
            return -fake_logits.mean()
        return self._target(fake_logits, 1.0)

    def _target(self, logits: torch.Tensor, value: float) -> torch.Tensor:
        target = torch.full_like(logits, value)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)

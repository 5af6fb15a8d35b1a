"""Temporal stabilisation of predicted colour: a two-sided recursive filter along time whose
weights drop where the picture changes, after compensating each frame's brightness.

Colourising the frames of a clip one by one flickers: the network's guess for a wall moves
a little from frame to frame. :class:`TemporalFilter` averages each pixel's colour with its
neighbours in time, as long as the picture there stays the same:

1. **Guide.** Each frame's gray at the network's size (``r x r``) is compared with the
   previous frame's, after fitting the previous one's brightness to it (``a * g + b`` by
   least squares over the frame): old film's exposure flicker, or a camera's auto-exposure,
   is absorbed by the fit and does not count as change.
2. **Weights.** The local mean absolute difference ``d`` (a ``(2 * radius + 1)``-square box)
   gives the weight of the previous frame, ``w = strength * exp(-(d / sigma) ** 2)``:
   ``strength`` in still areas, near 0 where something moves or the shot cuts.
3. **Filter.** A forward pass ``F_t = x_t + w_t F_{t-1}`` and a backward pass (over
   ``lookahead`` frames) ``B_t = x_t + w_{t+1} B_{t+1}``, with the same recursions on
   ones for the normalisers, give ``(F_t + B_t - x_t) / (N^F_t + N^B_t - 1)``: an
   exponentially weighted average over past and future frames without the lag a one-sided
   filter has. At ``strength = 0.9`` the mean distance of the frames averaged is about 9
   frames each way (19 at the default 0.95); cutting the backward pass at 16 frames
   (``0.9 ** 16`` is 19 %) changed the flicker of our clips by under 1 % against 32.

The filtered signal ``x`` may be larger than the guide (the video pipeline filters the
chroma planes): the weights are upsampled bilinearly to it.

4. **Headroom** (``steady_gamut``, for the video pipeline). Where a frame's luma comes
   near white (or black), the colour must shrink towards gray to stay in the gamut; if
   the brightness there flickers (old film's exposure, a clipped highlight), a colour
   fitted to each frame's own luma turns on and off from frame to frame however steady
   the filtered colour is. So the stream also tracks how much brighter and darker each
   place gets in the frames around it: a forward and a backward running maximum
   ``M_t = g_t + e_t * max(0, M_{t-1} - g_t)`` (and minimum) of the guide ``g``, with
   ``e_t = exp(-(d / (2 sigma)) ** 2)``, the weight without ``strength`` and falling off
   at twice the distance (a clipped highlight does not follow the brightness fit), so
   that it is held through still frames and forgotten where the picture changes. The
   colour is then fitted to the gamut of the brightest and darkest of them
   (:func:`pixcolor._yuv.chroma_planes`), the same in every frame.

5. **Camera motion** (``motion="global"``). A panning or shaking camera moves every
   textured place, so step 2 unlinks it and the network's wobble stays there. So each
   frame's translation against the previous one is also found (phase correlation of the
   guides, :mod:`pixcolor._motion`), a second weight compares the frame with the previous
   one moved by it, and each place takes whichever link is stronger: linked to the same
   place (``F_t = x_t + w_t F_{t-1}``) or to where the picture came from
   (``F_t = x_t + w'_t warp(F_{t-1})``, and the backward pass warped back), so that the
   colour moves with the picture. Where the camera stands still the two links agree.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pixcolor._motion import inside, shifts_between, spectra, warp

__all__ = ["TemporalFilter"]

# A frame's link to its predecessor, at the signal's size: the weight where it stands still
# and, where the camera moved, the weight where it follows the camera (0 wherever the other
# is used) with that motion in signal pixels.
_Link = tuple[torch.Tensor, "tuple[torch.Tensor, torch.Tensor] | None"]

# The headroom's links fall off at this many times the filter's sigma: wider than the
# colour's, so that a clipped highlight, which the brightness fit cannot explain, stays
# linked through exposure flicker. Measured on the old films of docs/video.rst, lossless:
# 1x, 2x, 4x gave the department store's flicker ratio 0.33, 0.24, 0.21 and the hand-held
# clips' 0.47/0.48, 0.47/0.48, 0.48/0.50.
_HEADROOM_SIGMAS = 2.0

# TemporalFilter's motion settings (step 5 of the module docstring).
MOTIONS = ("global", "none")


@dataclass(frozen=True)
class TemporalFilter:
    """Settings of the temporal colour filter (see the module docstring).

    Args:
        strength: Weight of the neighbouring frame where nothing changes, in ``[0, 1)``:
            0 is no filtering, 0.9 averages over about 9 frames each way, 0.95 (the
            default) over about 19.
        sigma: Change of the guide (gray in ``[0, 1]``, local mean absolute difference
            after the brightness fit) at which the weight falls to ``1/e`` of ``strength``.
        radius: Half-side of the square over which the difference is averaged, in pixels
            of the network's size.
        lookahead: Future frames the backward pass sees (the filter holds this many frames
            back before it emits them).
        steady_gamut: Fit the colour of a video into the gamut of the brightest and
            darkest version of each place in the frames around it (held through still
            frames, see the module docstring), so that a highlight whose brightness
            flickers keeps a steady colour. ``False``: fit each frame to its own luma.
        motion: ``"global"``: also link each place to where the previous frame's picture
            was before the camera moved (one translation per frame, by phase correlation
            of the guides), wherever that explains the new frame better than standing
            still, so that the colour moves with a panning or shaking camera (step 5 of
            the module docstring). ``"none"``: link each place to the same place only.

    Raises:
        ValueError: If a setting is out of range.

    Example:
        >>> filt = TemporalFilter(strength=0.8)
        >>> stream = filt.stream()
        >>> guide = torch.full((3, 1, 8, 8), 0.5)
        >>> signal = torch.tensor([0.0, 3.0, 0.0]).view(3, 1, 1, 1).expand(3, 2, 8, 8)
        >>> out = torch.cat([stream.push(guide, signal), stream.flush()])
        >>> out.shape, round(out[1, 0, 0, 0].item(), 2)  # the outlier is pulled in
        (torch.Size([3, 2, 8, 8]), 1.15)
    """

    strength: float = 0.95
    sigma: float = 0.01
    radius: int = 1
    lookahead: int = 16
    steady_gamut: bool = True
    motion: str = "global"

    def __post_init__(self) -> None:
        if not (isinstance(self.strength, (int, float)) and 0 <= self.strength < 1):
            raise ValueError(f"strength must be in [0, 1), got {self.strength!r}")
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma)) or (
            self.sigma <= 0
        ):
            raise ValueError(f"sigma must be a finite number > 0, got {self.sigma!r}")
        for name in ("radius", "lookahead"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.steady_gamut, bool):
            raise ValueError(f"steady_gamut must be True or False, got {self.steady_gamut!r}")
        if self.motion not in MOTIONS:
            raise ValueError(f"motion must be one of {', '.join(MOTIONS)}, got {self.motion!r}")

    def stream(self, headroom: bool = False) -> TemporalStream:
        """A filter over one clip: feed it frames in order. With ``headroom``, each
        emitted frame has two more channels (see :class:`TemporalStream`)."""
        return TemporalStream(self, headroom)

    def __call__(self, guide: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        """Filter a whole clip at once: ``guide`` ``(T, 1, r, r)``, ``signal``
        ``(T, C, h, w)`` -> ``(T, C, h, w)``."""
        stream = self.stream()
        return torch.cat([stream.push(guide, signal), stream.flush()])


class TemporalStream:
    """:class:`TemporalFilter` over one clip, fed in batches; emits frames ``lookahead``
    frames late (all of them at :meth:`flush`).

    With ``headroom``, the emitted frames carry two more channels after the signal's: how
    much brighter and how much darker than the frame's own guide each place gets in the
    frames linked to it (step 4 of the module docstring), ``>= 0``, at the signal's size.
    """

    def __init__(self, settings: TemporalFilter, headroom: bool = False) -> None:
        self.settings = settings
        self.headroom = headroom
        self._prev_guide: torch.Tensor | None = None
        self._prev_spectrum: torch.Tensor | None = None  # the last frame's, for the motion
        self._prev_forward: torch.Tensor | None = None
        self._prev_bounds: torch.Tensor | None = None
        # Per held frame: its signal with a channel of ones (for the norm), the weight
        # linking it to its predecessor, and its forward state (the weighted sum over past
        # frames and, as the last channel, the sum of weights).
        self._held: deque[tuple[torch.Tensor, _Link | None, torch.Tensor]] = deque()
        # With headroom, per held frame: its guide, the link without strength (at the
        # guide's size) and its forward running maximum and minimum of the guide.
        self._bounds: deque[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = deque()

    def push(self, guide: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        """Add frames (``guide`` ``(B, 1, r, r)`` gray in ``[0, 1]``, ``signal``
        ``(B, C, h, w)``); returns the filtered signal of the frames now final, oldest
        first (possibly none: ``(0, C, h, w)``)."""
        if guide.dim() != 4 or guide.shape[1] != 1 or guide.shape[0] != signal.shape[0]:
            raise ValueError(
                f"guide must be (B, 1, r, r) and signal (B, C, h, w) with the same B, got "
                f"{tuple(guide.shape)} and {tuple(signal.shape)}"
            )
        guide = guide.float()
        still, motion = self._weights(guide)
        if self.headroom:
            self._track(guide, still)
        size = signal.shape[-2:]
        still = _resize(still, size)
        if motion is not None:
            moved, shifts = motion
            moved = _resize(moved, size)
            shifts = shifts * torch.tensor([size[0] / guide.shape[-2], size[1] / guide.shape[-1]])
            # each place follows the camera or stands still, whichever explains it better
            follow = moved > still
            still = torch.where(follow, 0.0, still)
            moved = torch.where(follow, moved, 0.0)
        ones = torch.ones_like(signal[:, :1], dtype=torch.float32)
        for i, x in enumerate(torch.cat([signal.float(), ones], dim=1)):
            link = None
            state = x
            if self._prev_forward is not None:
                prev = self._prev_forward
                state = torch.addcmul(x, still[i], prev)
                link = (still[i], None)
                if motion is not None and shifts[i].any():
                    link = (still[i], (moved[i], shifts[i]))
                    state.addcmul_(moved[i], warp(prev, shifts[i]))
            self._prev_forward = state
            self._held.append((x, link, state))
        count = len(self._held) - self.settings.lookahead
        if count <= 0:
            channels = signal.shape[1] + (2 if self.headroom else 0)
            return signal.new_empty((0, channels, *signal.shape[2:]), dtype=torch.float32)
        return self._emit(count)

    def flush(self) -> torch.Tensor:
        """The filtered signal of every frame still held."""
        if not self._held:
            return torch.empty(0)
        return self._emit(len(self._held))

    def _weights(
        self, guide: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Weights ``(B, 1, r, r)`` linking each frame to its predecessor where they stand
        still and, with ``motion="global"``, the weights where the camera's motion is
        followed with that motion ``(B, 2)`` in guide pixels (0 where it stood still; the
        clip's first frame has no link: its rows are unused)."""
        s = self.settings
        previous = guide[:-1]
        if self._prev_guide is not None:
            previous = torch.cat([self._prev_guide, previous])
        self._prev_guide = guide[-1:]
        current = guide[len(guide) - len(previous) :]
        still = self._link(previous, current)
        moved = shifts = None
        if s.motion == "global" and len(previous):
            spec = spectra(guide)
            if self._prev_spectrum is not None:
                spec_previous = torch.cat([self._prev_spectrum, spec[:-1]])
            else:
                spec_previous = spec[:-1]
            self._prev_spectrum = spec[-1:]
            shifts = shifts_between(
                spec_previous, spec[len(spec) - len(previous) :], guide.shape[-2:]
            )
            # under a twentieth of a pixel the camera stands still: the still link serves
            shifts = torch.where(shifts.abs().amax(dim=1, keepdim=True) < 0.05, 0.0, shifts)
            moved = torch.zeros_like(still)
            moving = [i for i, d in enumerate(shifts) if d.any()]
            if moving:
                covered = torch.stack([inside(guide.shape[-2:], shifts[i]) for i in moving])
                aligned = torch.stack([warp(previous[i], shifts[i]) for i in moving])
                now = current[moving]
                # where the moved frame does not cover a pixel, the link is not trusted
                aligned = torch.where(covered > 0, aligned, now)
                moved[moving] = self._link(aligned, now) * covered
        elif s.motion == "global":
            self._prev_spectrum = spectra(guide[-1:])
        if len(previous) < len(guide):
            first = torch.zeros_like(guide[:1])
            still = torch.cat([first, still])
            if moved is not None and shifts is not None:
                moved = torch.cat([first, moved])
                shifts = torch.cat([shifts.new_zeros(1, 2), shifts])
        if moved is None or shifts is None:
            return still, None
        return still, (moved, shifts)

    def _link(self, previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """``strength * exp(-(d / sigma)^2)`` of the local difference ``d`` after the
        brightness fit."""
        s = self.settings
        diff = (current - _fit_brightness(previous, current)).abs()
        if s.radius:
            diff = _box_mean(diff, s.radius)
        # exp(-80) is 2e-35: beyond it float32 goes subnormal, which is slow on x86 CPUs
        return s.strength * torch.exp(-((diff / s.sigma) ** 2).clamp_(max=80.0))

    def _emit(self, count: int) -> torch.Tensor:
        """Run the backward pass over everything held (its tail is the lookahead) and
        return the first ``count`` frames' output."""
        out = []
        back: torch.Tensor | None = None  # w_{t+1} B_{t+1}: what the future adds to frame t
        for x, link, forward in reversed(self._held):
            total = forward if back is None else forward + back
            out.append(total[:-1] / total[-1:])
            if link is not None:
                still, motion = link
                ahead = x if back is None else x + back
                back = still * ahead
                if motion is not None:
                    moved, shift = motion
                    back = back.add_(warp(moved * ahead, -shift))
        out.reverse()
        for _ in range(count):
            self._held.popleft()
        result = torch.stack(out[:count])
        if not self.headroom:
            return result
        room = self._headroom(count)
        if room.shape[-2:] != result.shape[-2:]:
            room = F.interpolate(room, size=result.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([result, room], dim=1)

    def _track(self, guide: torch.Tensor, weights: torch.Tensor) -> None:
        """Forward running maximum and minimum of the guide along the links (step 4),
        kept as ``(2, r, r)`` maxima of ``(g, -g)`` so that both run in one recursion."""
        strength = self.settings.strength
        signed = torch.cat([guide, -guide], dim=1)
        # exp(-(d / (k sigma))^2) from the weight (strength 0: nothing is linked)
        links = (
            (weights / strength).pow_(1.0 / _HEADROOM_SIGMAS**2)
            if strength > 0
            else torch.zeros_like(weights)
        )
        for g, link in zip(signed, links, strict=True):
            if self._prev_bounds is None:
                self._prev_bounds = g
                self._bounds.append((g, None, g))
                continue
            bounds = _carry(g, link, self._prev_bounds)
            self._prev_bounds = bounds
            self._bounds.append((g, link, bounds))

    def _headroom(self, count: int) -> torch.Tensor:
        """``(count, 2, r, r)``: how far the backward running maximum and minimum over
        everything held, joined with the forward ones, reach above and below the guide."""
        out = []
        later: tuple[torch.Tensor | None, torch.Tensor] | None = None  # link, bounds of t+1
        for index in range(len(self._bounds) - 1, -1, -1):
            g, link, forward = self._bounds[index]
            bounds = g if later is None or later[0] is None else _carry(g, *later)
            later = (link, bounds)
            if index < count:  # only the frames emitted now need theirs
                out.append(torch.maximum(forward, bounds).sub_(g))
        out.reverse()
        for _ in range(count):
            self._bounds.popleft()
        return torch.stack(out)


def _box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the ``(2 radius + 1)``-square around each pixel of ``(B, 1, h, w)``, the
    border replicated (``avg_pool2d``'s result, as sums of shifted slices: several times
    faster on one channel)."""
    h, w = x.shape[-2:]
    k = 2 * radius + 1
    padded = F.pad(x, (radius,) * 4, mode="replicate")
    rows = sum(padded[..., i : i + h, :] for i in range(k))
    return sum(rows[..., j : j + w] for j in range(k)) / (k * k)


def _resize(weights: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Weights at the guide's size, bilinearly resized to the signal's."""
    if weights.shape[-2:] == size:
        return weights
    return F.interpolate(weights, size=size, mode="bilinear", align_corners=False)


def _carry(signed: torch.Tensor, link: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """The running maxima ``(2, r, r)`` of ``signed`` (the guide and its negative) and of a
    neighbour's ``bounds``, the neighbour's excess weighed by ``link`` in ``[0, 1]``."""
    return (bounds - signed).clamp_(min=0).mul_(link).add_(signed)


def _fit_brightness(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """``a * previous + b`` per frame, ``a, b`` fitted to ``current`` by least squares."""
    mp = previous.mean(dim=(-2, -1), keepdim=True)
    mc = current.mean(dim=(-2, -1), keepdim=True)
    dp = previous - mp
    gain = (dp * (current - mc)).mean(dim=(-2, -1), keepdim=True) / (
        dp.square().mean(dim=(-2, -1), keepdim=True) + 1e-6
    )
    return gain * dp + mc

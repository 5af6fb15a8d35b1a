"""sRGB <-> CIE L*a*b* conversion in PyTorch, matching scikit-image.

Every transform works on tensors shaped ``(*, 3, H, W)`` on any device, is batched and
differentiable, and uses exactly the constants of :func:`skimage.color.rgb2lab`: the
sRGB transfer curve, the sRGB -> XYZ matrix and the D65 2-degree white point. Half
precision inputs are computed in float32 and returned in their own dtype.

The network never sees raw Lab: :func:`normalize_l` / :func:`normalize_ab` map it to the
ranges a generator works in, with constants that live in the model's config
(``L / 50 - 1`` and ``ab / 110`` by default).

Example:
    >>> import torch
    >>> from pixcolor import lab
    >>> rgb = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    >>> [round(v, 2) for v in lab.rgb_to_lab(rgb).flatten().tolist()]
    [53.24, 80.09, 67.2]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "LabToRgb",
    "RgbToLab",
    "denormalize_ab",
    "denormalize_l",
    "lab2rgb",
    "lab_to_rgb",
    "normalize_ab",
    "normalize_l",
    "recolor",
    "rgb2lab",
    "rgb_to_l",
    "rgb_to_lab",
]

# scikit-image's constants (skimage/color/colorconv.py), kept verbatim.
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_RGB_FROM_XYZ = tuple(map(tuple, np.linalg.inv(np.array(_XYZ_FROM_RGB)).tolist()))
_D65_2DEG = (0.95047, 1.0, 1.08883)
# The white point folded into the matrices: XYZ / white and (XYZ * white) in one step.
_XYZ_FROM_RGB_WHITE = tuple(
    tuple(v / w for v in row) for row, w in zip(_XYZ_FROM_RGB, _D65_2DEG, strict=False)
)
_WHITE_RGB_FROM_XYZ = tuple(
    tuple(v * w for v, w in zip(row, _D65_2DEG, strict=False)) for row in _RGB_FROM_XYZ
)

_SRGB_LINEAR_LIMIT = 0.04045  # sRGB value where the curve switches to the power law
_LINEAR_SRGB_LIMIT = 0.0031308  # the same switch point on the linear side
_XYZ_LAB_LIMIT = 0.008856  # (6/29)**3, as rounded by skimage
_LAB_XYZ_LIMIT = 0.2068966  # 6/29, as rounded by skimage
_KAPPA = 7.787
_OFFSET = 16.0 / 116.0


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Convert sRGB in ``[0, 1]`` to CIE L*a*b* (D65, 2-degree observer).

    Args:
        rgb: Tensor of shape ``(*, 3, H, W)`` with sRGB values in ``[0, 1]``, any floating
            dtype and device.

    Returns:
        Tensor of the same shape, dtype and device: ``L`` in ``[0, 100]``, ``a`` and ``b``
        roughly in ``[-128, 127]``.

    Raises:
        TypeError: If ``rgb`` is not a floating-point tensor.
        ValueError: If ``rgb`` does not have 3 channels in dimension ``-3``.

    Example:
        >>> white = rgb_to_lab(torch.ones(2, 3, 4, 4))
        >>> white.shape, round(white[0, 0, 0, 0].item(), 3)
        (torch.Size([2, 3, 4, 4]), 100.0)
    """
    _check_image(rgb, "rgb")
    return _chunked(_rgb_to_lab, _compute_dtype(rgb)).to(rgb.dtype)


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """The ``L`` channel of :func:`rgb_to_lab` alone, about twice as fast.

    Args:
        rgb: ``(*, 3, H, W)`` sRGB in ``[0, 1]``.

    Returns:
        ``(*, 1, H, W)`` lightness in ``[0, 100]``, equal to ``rgb_to_lab(rgb)[..., :1, :, :]``.

    Example:
        >>> rgb = torch.rand(2, 3, 4, 4)
        >>> torch.allclose(rgb_to_l(rgb), rgb_to_lab(rgb)[:, :1])
        True
    """
    _check_image(rgb, "rgb")
    if rgb.stride(-3) == 0:  # a gray image expanded to 3 channels: R = G = B, and Y = R
        return _chunked(_gray_to_l, _compute_dtype(rgb[..., :1, :, :])).to(rgb.dtype)
    return _chunked(_rgb_to_l, _compute_dtype(rgb)).to(rgb.dtype)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Convert CIE L*a*b* (D65, 2-degree observer) to sRGB.

    Follows :func:`skimage.color.lab2rgb`: a Lab colour whose ``z`` would be negative is
    clipped to ``z = 0``, and the result is clipped to ``[0, 1]`` (pass ``clip=False`` to
    keep out-of-gamut values).

    Args:
        lab: Tensor of shape ``(*, 3, H, W)``: ``L`` in ``[0, 100]``, ``a``/``b`` in about
            ``[-128, 127]``.
        clip: Clip the output to ``[0, 1]``.

    Returns:
        sRGB tensor of the same shape, dtype and device.

    Raises:
        TypeError: If ``lab`` is not a floating-point tensor.
        ValueError: If ``lab`` does not have 3 channels in dimension ``-3``.

    Example:
        >>> lab = torch.tensor([53.2408, 80.0925, 67.2032]).view(3, 1, 1)
        >>> lab_to_rgb(lab).flatten().round(decimals=3).tolist()
        [1.0, 0.0, 0.0]
    """
    _check_image(lab, "lab")
    rgb = _chunked(_lab_to_rgb, _compute_dtype(lab))
    if clip:
        rgb = rgb.clamp(0.0, 1.0)
    return rgb.to(lab.dtype)


def recolor(rgb: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """sRGB with the lightness of ``rgb`` and the chroma ``ab``, fitted into the sRGB gamut.

    Equal to ``lab_to_rgb(cat(rgb_to_l(rgb), ab))`` where that is in gamut, in one pass that
    never forms ``L``. A colour outside the gamut is not clipped channel by channel (that
    would change its lightness): it is moved towards the gray of the same luminance in
    linear RGB, ``Y + s (rgb - Y)`` with the largest ``s`` in ``[0, 1]`` that fits. The luma
    row sums to 1, so ``Y`` and hence ``L`` are kept exactly and the hue roughly.

    Args:
        rgb: ``(*, 3, H, W)`` sRGB in ``[0, 1]``, or ``(*, 1, H, W)`` for a gray image; or
            the same as uint8 levels (0-255), for an 8-bit result computed with lookup
            tables: within one level of quantizing the float result, about twice as fast.
        ab: ``(*, 2, H, W)`` chroma, same leading and spatial shape.

    Returns:
        ``(*, 3, H, W)`` sRGB in ``[0, 1]`` (float32, or float64 for float64 inputs), or
        uint8 levels for a uint8 ``rgb``.

    Raises:
        TypeError: If ``rgb`` is neither floating point nor uint8, or ``ab`` is not
            floating point.
        ValueError: If the shapes do not match.

    Example:
        >>> gray = torch.full((1, 1, 1), 0.5)
        >>> ab = torch.tensor([80.0, 67.0]).view(2, 1, 1)  # red, far outside at this L
        >>> out = recolor(gray, ab)
        >>> bool((out >= 0).all() and (out <= 1).all()), torch.allclose(rgb_to_l(out), rgb_to_l(gray.expand(3, 1, 1)))
        (True, True)
    """
    if not isinstance(rgb, torch.Tensor) or not (
        rgb.is_floating_point() or rgb.dtype == torch.uint8
    ):
        raise TypeError(f"rgb must be a floating-point or uint8 torch.Tensor, got {_describe(rgb)}")
    if not isinstance(ab, torch.Tensor) or not ab.is_floating_point():
        raise TypeError(f"ab must be a floating-point torch.Tensor, got {_describe(ab)}")
    if (
        rgb.dim() < 3
        or rgb.shape[-3] not in (1, 3)
        or ab.shape[-3:-2] != (2,)
        or (rgb.shape[:-3] + rgb.shape[-2:] != ab.shape[:-3] + ab.shape[-2:])
    ):
        raise ValueError(
            "rgb must be (*, 3 or 1, H, W) and ab (*, 2, H, W) of the same * and H, W, "
            f"got {tuple(rgb.shape)} and {tuple(ab.shape)}"
        )
    if rgb.stride(-3) == 0:  # an expanded gray: one plane is enough
        rgb = rgb[..., :1, :, :]
    if rgb.dtype == torch.uint8:
        from pixcolor._lab8 import recolor_uint8

        return recolor_uint8(rgb, ab)
    dtype = torch.float64 if torch.float64 in (rgb.dtype, ab.dtype) else torch.float32
    return _chunked(lambda r, c: _recolor(r.to(dtype), c.to(dtype)), rgb, ab)


def normalize_l(lightness: torch.Tensor, center: float = 50.0, scale: float = 50.0) -> torch.Tensor:
    """Map ``L`` in ``[0, 100]`` to the generator's input range: ``(L - center) / scale``.

    With the defaults this is ``L / 50 - 1``, in ``[-1, 1]``.
    """
    return (lightness - center) / scale


def denormalize_l(
    lightness: torch.Tensor, center: float = 50.0, scale: float = 50.0
) -> torch.Tensor:
    """Inverse of :func:`normalize_l`."""
    return lightness * scale + center


def normalize_ab(ab: torch.Tensor, scale: float = 110.0) -> torch.Tensor:
    """Map ``a``/``b`` to the generator's output range: ``ab / scale``."""
    return ab / scale


def denormalize_ab(ab: torch.Tensor, scale: float = 110.0) -> torch.Tensor:
    """Inverse of :func:`normalize_ab`: ``ab * scale``."""
    return ab * scale


def rgb2lab(rgb: np.ndarray) -> np.ndarray:
    """NumPy wrapper of :func:`rgb_to_lab` for ``(..., H, W, 3)`` arrays, like skimage's.

    Integer arrays are scaled by their dtype's maximum; the result is float32 (float64 for
    float64 input).

    Example:
        >>> rgb2lab(np.full((1, 1, 3), 255, np.uint8)).round(2).tolist()
        [[[100.0, -0.0, 0.0]]]
    """
    tensor = torch.from_numpy(_to_float_array(rgb, "rgb")).movedim(-1, -3)
    return rgb_to_lab(tensor).movedim(-3, -1).numpy()


def lab2rgb(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """NumPy wrapper of :func:`lab_to_rgb` for ``(..., H, W, 3)`` float arrays."""
    if not np.issubdtype(np.asarray(lab).dtype, np.floating):
        raise TypeError(f"lab must be a floating-point array, got dtype {np.asarray(lab).dtype}")
    tensor = torch.from_numpy(_to_float_array(lab, "lab")).movedim(-1, -3)
    return lab_to_rgb(tensor, clip=clip).movedim(-3, -1).numpy()


class RgbToLab(nn.Module):
    """Module form of :func:`rgb_to_lab`: ``(*, 3, H, W)`` sRGB -> Lab."""

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb_to_lab(rgb)


class LabToRgb(nn.Module):
    """Module form of :func:`lab_to_rgb`: ``(*, 3, H, W)`` Lab -> sRGB."""

    def __init__(self, clip: bool = True) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, lab: torch.Tensor) -> torch.Tensor:
        return lab_to_rgb(lab, clip=self.clip)


# Rows of a (*, 3, H, W) tensor converted per pass: big enough that Python overhead is
# negligible, small enough that a pass's temporaries stay in a core's L2 cache.
_CHUNK_PIXELS = 1 << 17


def _chunked(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> torch.Tensor:
    """Apply a per-pixel ``fn`` to row blocks of ``inputs`` (tensors of the same leading and
    spatial shape); the result is identical to ``fn(*inputs)``."""
    x = inputs[0]
    height, width = x.shape[-2], x.shape[-1]
    batch = x[..., 0, 0, 0].numel()
    rows = max(1, _CHUNK_PIXELS // max(1, width * batch))
    if rows >= height:
        return fn(*inputs)
    first = fn(*(t[..., :rows, :] for t in inputs))  # fn may change the channel count
    out = _empty_in_layout(first, (*first.shape[:-2], height, width))
    out[..., :rows, :] = first
    for start in range(rows, height, rows):
        out[..., start : start + rows, :] = fn(*(t[..., start : start + rows, :] for t in inputs))
    return out


def _empty_in_layout(like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """An empty tensor of ``shape`` whose dimensions are laid out in memory in the order
    of ``like``'s (channels-last stays channels-last, whatever the rank)."""
    order = sorted(range(like.dim()), key=lambda d: -like.stride(d))
    buffer = like.new_empty([shape[d] for d in order])
    return buffer.permute(*sorted(range(like.dim()), key=order.__getitem__))


def _piecewise(
    x: torch.Tensor,
    limit: float,
    high: Callable[[torch.Tensor], torch.Tensor],
    low: Callable[[Any], Any],
) -> torch.Tensor:
    """``high(x)`` where ``x > limit`` else ``low(x)``, for a curve continuous at ``limit``.

    ``high(max(x, limit)) + low(min(x, limit)) - low(limit)`` needs no mask (a masked
    ``where`` is several times slower on CPU), and every gradient stays finite because
    each branch only ever sees its own side of ``limit``. Above ``limit`` the result is
    exact; below it is off by the curve's jump at ``limit`` (< 4e-6 for skimage's rounded
    constants).
    """
    return high(x.clamp(min=limit)) + (low(x.clamp(max=limit)) - low(limit))


def _pow(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """``x ** exponent`` for ``x > 0`` as ``exp(exponent * log x)``: vectorised on CPU,
    where ``torch.pow`` with a fractional scalar exponent is not."""
    return torch.log(x).mul_(exponent).exp_()


def _rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    xyz = _apply_matrix(_XYZ_FROM_RGB_WHITE, _srgb_to_linear(rgb))
    fx, fy, fz = _lab_f(xyz).unbind(-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def _srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    return _piecewise(
        rgb, _SRGB_LINEAR_LIMIT, lambda v: _pow((v + 0.055) / 1.055, 2.4), lambda v: v / 12.92
    )


def _y_to_l(y: torch.Tensor) -> torch.Tensor:
    return 116.0 * _lab_f(y) - 16.0


def _luminance(linear: torch.Tensor) -> torch.Tensor:
    """``Y`` ``(*, 1, H, W)`` of linear RGB ``(*, 3, H, W)``; a gray plane ``(*, 1, H, W)``
    is its own (the Y row of the matrix sums to 1)."""
    if linear.shape[-3] == 1:
        return linear
    wr, wg, wb = _XYZ_FROM_RGB_WHITE[1]
    r, g, b = linear.unbind(-3)
    return (wr * r + wg * g + wb * b).unsqueeze(-3)


def _rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    return _y_to_l(_luminance(_srgb_to_linear(rgb)))


def _gray_to_l(gray: torch.Tensor) -> torch.Tensor:
    # The Y row of the matrix sums to 1 (0.212671 + 0.715160 + 0.072169): Y of a gray is its linear value.
    return _y_to_l(_srgb_to_linear(gray))


def _lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    l_, a, b = lab.unbind(-3)
    fy = (l_ + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)
    f = torch.stack((fx, fy, fz), dim=-3)
    return _linear_to_srgb(_apply_matrix(_WHITE_RGB_FROM_XYZ, _lab_f_inverse(f)))


def _recolor(rgb: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    y = _luminance(_srgb_to_linear(rgb))
    return _linear_to_srgb(_linear_with_chroma(y, _lab_f(y), ab)).clamp_(0.0, 1.0)


def _linear_with_chroma(y: torch.Tensor, fy: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Linear RGB ``(*, 3, H, W)`` in ``[0, 1]`` of luminance ``y`` (``(*, 1, H, W)``, with
    ``fy = _lab_f(y)``) and chroma ``ab``, moved into the gamut as :func:`recolor` says."""
    a, b = ab.unbind(-3)
    fy = fy.squeeze(-3)
    x = _lab_f_inverse(fy + a / 500.0)
    z = _lab_f_inverse((fy - b / 200.0).clamp_(min=0.0))
    out = _apply_matrix(_WHITE_RGB_FROM_XYZ, (x, y.squeeze(-3), z))
    # Luminance-keeping gamut fit: Y is a weighted mean of the channels, so lo <= Y <= hi.
    high, low = out.amax(dim=-3, keepdim=True), out.amin(dim=-3, keepdim=True)
    scale = ((1.0 - y) / (high - y).clamp(min=1e-12)).clamp(max=1.0)
    scale = torch.minimum(scale, y / (y - low).clamp(min=1e-12))
    return torch.addcmul(y, scale, out - y).clamp_(0.0, 1.0)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    """CIE's ``f``: cube root above ``(6/29)^3``, linear below (XYZ / white -> Lab)."""
    return _piecewise(
        t, _XYZ_LAB_LIMIT, lambda v: _pow(v, 1.0 / 3.0), lambda v: _KAPPA * v + _OFFSET
    )


def _lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_lab_f` (Lab -> XYZ / white)."""
    return _piecewise(f, _LAB_XYZ_LIMIT, lambda v: v * v * v, lambda v: (v - _OFFSET) / _KAPPA)


def _linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    return _piecewise(
        linear,
        _LINEAR_SRGB_LIMIT,
        lambda v: 1.055 * _pow(v, 1.0 / 2.4) - 0.055,
        lambda v: v * 12.92,
    )


def _describe(x: object) -> str:
    return f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


def _check_image(x: object, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (*, 3, H, W), got {tuple(x.shape)}")


def _compute_dtype(x: torch.Tensor) -> torch.Tensor:
    """Half precision is computed in float32; float32/float64 stay as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _apply_matrix(
    matrix: tuple[tuple[float, ...], ...], x: torch.Tensor | tuple[torch.Tensor, ...]
) -> torch.Tensor:
    """``out[..., i, h, w] = sum_j matrix[i][j] * x[..., j, h, w]`` without a permute
    (``x`` may also be given as its three channel planes)."""
    c0, c1, c2 = x.unbind(-3) if isinstance(x, torch.Tensor) else x
    rows = [m0 * c0 + m1 * c1 + m2 * c2 for m0, m1, m2 in matrix]
    return torch.stack(rows, dim=-3)


def _to_float_array(arr: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim < 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., H, W, 3), got {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        return np.ascontiguousarray(arr, dtype=np.float32) / np.iinfo(arr.dtype).max
    if arr.dtype == np.float64:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        return np.ascontiguousarray(arr, dtype=np.float32)
    raise TypeError(f"{name} must be an integer or floating-point array, got dtype {arr.dtype}")

"""Which colour hints hold at each frame of a clip, for :mod:`pixcolor.video`."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

from pixcolor.hints import Hint, HintSet, parse_hints

__all__ = ["HintSchedule"]


class HintSchedule:
    """Which hints hold at each frame: one sequence for every frame, or ``{first_frame:
    hints}`` ranges. Parsed when made; checked against the frame size by :meth:`bind`."""

    def __init__(self, hints: Any) -> None:
        self._starts: list[int] = []
        self._hints: list[list[Hint]] = []
        self._sets: list[HintSet | None] = []
        if hints is None:
            return
        if isinstance(hints, Mapping):
            for start in hints:
                if isinstance(start, bool) or not isinstance(start, int) or start < 0:
                    raise ValueError(f"hints keys must be frame indices (ints >= 0), got {start!r}")
            for start in sorted(hints):
                self._starts.append(start)
                self._hints.append(_parse(hints[start] or [], f"hints[{start}]: "))
        elif isinstance(hints, Sequence) and not isinstance(hints, (str, bytes)):
            self._starts, self._hints = [0], [_parse(hints, "")]
        else:
            raise ValueError(
                "hints must be a sequence of hints or a mapping {first_frame: hints}, "
                f"got {type(hints).__name__}"
            )

    def bind(self, size: tuple[int, int]) -> HintSchedule:
        """Check every range's hints against frames of ``size`` ``(H, W)`` (a hint outside
        the frame raises ``ValueError`` before any frame is colourised)."""
        self._sets = [
            HintSet.build(size, hints, label=f"frames from {start}: ") if hints else None
            for start, hints in zip(self._starts, self._hints, strict=True)
        ]
        return self

    @property
    def sets(self) -> list[HintSet | None]:
        """The bound hints of every range (``None``: a range without hints)."""
        return list(self._sets)

    def at(self, index: int) -> HintSet | None:
        """The bound hints of frame ``index`` (``None``: none)."""
        found = self._range(index)
        return None if found < 0 else self._sets[found]

    def hints_at(self, index: int) -> list[Hint]:
        """The parsed hints of frame ``index`` (empty: none)."""
        found = self._range(index)
        return [] if found < 0 else self._hints[found]

    def _range(self, index: int) -> int:
        """Position of the range that holds frame ``index`` (-1: before the first)."""
        return bisect_right(self._starts, index) - 1


def _parse(hints: Any, label: str) -> list[Hint]:
    try:
        return parse_hints(hints)
    except ValueError as err:
        raise ValueError(f"{label}{err}") from None

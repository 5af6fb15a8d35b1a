"""``pixcolor models``: list the presets, where they come from, and whether they are here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list the model presets (--model NAME)",
        description="List the presets that --model and from_pretrained accept: what each is, its "
        "download size, where its files come from, the licence of its weights, and whether it is "
        "already on this machine (never uses the network). Presets in another format (a fastai "
        ".pt state dict, DeOldify's .pth) are converted once on first use and cached under "
        "$PIXCOLOR_CACHE "
        "(default ~/.cache/pixcolor).",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = {"name": "NAME", "size": "SIZE", "license": "LICENCE", "cached": "ON THIS MACHINE"}
    widths = {k: max(len(header[k]), *(len(str(r[k])) for r in rows)) for k in header}
    for row in [header, *rows]:
        line = "  ".join(str(row[k]).ljust(widths[k]) for k in header)
        print(line.rstrip())
        if row is header:
            continue
        print(f"    {row['what']}")
        print(f"    from: {row['where']}")
        if row["provenance"]:
            print(f"    made: {row['provenance']}")
    from pixcolor.presets import cache_root

    print(f"\nconversions are cached in {cache_root()} (PIXCOLOR_CACHE); downloads in the "
          "Hugging Face cache (HF_HUB_CACHE); the measured precision and memory format of "
          f"each model on this machine in {cache_root() / 'inference'}")  # fmt: skip
    return 0


def _rows() -> list[dict[str, Any]]:
    import pixcolor
    from pixcolor._conversion_cache import cache_state
    from pixcolor._remote import megabytes
    from pixcolor.hub import WEIGHTS_NAME
    from pixcolor.presets import PRESETS

    rows = []
    for name, preset in PRESETS.items():
        size = preset.size
        if preset.path is not None:
            where = f"inside the package (pixcolor/{preset.path})"
            weights = Path(pixcolor.__file__).parent / preset.path / WEIGHTS_NAME
            size = size or (weights.stat().st_size if weights.is_file() else None)
        else:
            where = f"https://huggingface.co/{preset.repo_id} at {preset.revision[:12]}"
            if preset.converted:
                where += (
                    f", file {preset.filename} ({preset.format} format, converted on first use)"
                )
            elif preset.subfolder:
                where += f", folder {preset.subfolder}"
        rows.append(
            {
                "name": name,
                "size": megabytes(size).removeprefix("about ") if size else "?",
                "license": preset.license or "not stated",
                "cached": cache_state(name),
                "what": preset.description,
                "where": where,
                "provenance": preset.provenance,
                "size_bytes": size,
            }
        )
    return rows

"""Install a generator snapshot as the model that ships inside pixcolor.

Writes ``config.json`` + ``model.safetensors`` to ``OUTPUT`` (default: the package's
``weights/bundled``) with the chosen chroma factor baked into ``ab_scale``, the chosen render
size as the model's default (``render_size`` in its config), and the weights
stored as float16 (half the size; they load into a float32 model, and the outputs differ by
less than one 8-bit level, which this script checks).

Run: ``python scripts/install_bundled_model.py SNAPSHOT_DIR --factor 1.5 --render-size 128
[--output DIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import pixcolor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("snapshot")
    parser.add_argument("--factor", type=float, required=True)
    parser.add_argument("--render-size", type=int, required=True)
    parser.add_argument(
        "--output", default=str(Path(pixcolor.__file__).parent / "weights" / "bundled")
    )
    args = parser.parse_args()
    source = pixcolor.UNetGenerator.from_pretrained(args.snapshot)
    config = {
        **source.config_dict(),
        "ab_scale": source.config.ab_scale * args.factor,
        "render_size": args.render_size,
    }
    shipped = pixcolor.UNetGenerator.from_config(config)
    shipped.load_state_dict(source.state_dict())
    shipped.half().save_pretrained(args.output)
    reloaded = pixcolor.UNetGenerator.from_pretrained(args.output)
    x = torch.linspace(-1, 1, 128 * 128).view(1, 1, 128, 128)
    with torch.no_grad():
        want = pixcolor.lab.denormalize_ab(source(x), source.config.ab_scale * args.factor)
        got = pixcolor.lab.denormalize_ab(reloaded(x), reloaded.config.ab_scale)
    worst = (want - got).abs().max().item()
    size = (Path(args.output) / "model.safetensors").stat().st_size / 1e6
    print(
        f"installed {args.snapshot} x{args.factor} -> {args.output} ({size:.1f} MB); max |delta ab| fp16 vs fp32 {worst:.3f}"
    )
    if worst > 1.0:
        raise SystemExit("float16 weights change the colours by more than 1 ab unit; keep float32")


if __name__ == "__main__":
    main()

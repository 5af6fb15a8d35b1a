"""Helpers shared by several test files (importable thanks to conftest.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import zlib
from pathlib import Path

import torch
from torch import nn


@torch.no_grad()
def randomise_batchnorm(model: nn.Module, conv_bias: bool = False) -> nn.Module:
    """Move every batch norm's statistics and affine parameters (and, with ``conv_bias``,
    every conv bias) off their defaults, so a lost, stale or mis-mapped tensor changes the
    output. Uses the global RNG: seed before calling."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.2)
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
        elif conv_bias and isinstance(m, nn.Conv2d) and m.bias is not None:
            m.bias.normal_(0.0, 0.05)
    return model


def populate_hf_cache(
    cache: Path,
    repo_id: str,
    commit: str,
    files: dict[str, Path],
    refs: tuple[str, ...] = ("main",),
) -> dict[str, Path]:
    """Lay ``files`` (name in the repo -> local file) out as huggingface_hub's cache does
    after downloading them at ``commit``: ``models--owner--name/blobs/<sha256>``, a relative
    symlink to it at ``snapshots/<commit>/<name>``, and ``refs/<branch>`` holding the commit.
    Blobs are hard links to the local files where possible (the originals stay intact if a
    test deletes a blob). Returns name -> snapshot path."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshots = {}
    for name, source in files.items():
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        blob = repo / "blobs" / digest.hexdigest()
        if not blob.exists():
            try:
                os.link(source, blob)
            except OSError:
                shutil.copyfile(source, blob)
        pointer = repo / "snapshots" / commit / name
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
        snapshots[name] = pointer
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshots


def write_png_bomb(path: Path, side: int) -> None:
    """A valid 1-bit PNG of ``side x side`` zeros: tiny on disk, huge decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
                     + chunk(b"IEND", b""))  # fmt: skip

"""Training throughput: the data loader's cost and the network's achieved FLOP rate.

Measured side by side in one run, on the same network and step:

1. samples/s of a pretraining step fed from real photo files through ``PhotoFolder`` and a
   DataLoader, against the same step fed from uint8 tensors already in memory. The ratio
   is the loader's cost (goal: under 5 %).
2. the step's achieved GFLOP/s (forward + backward counted by ``FlopCounterMode``)
   against a float32 matrix multiply measured here, as a fraction of what the machine does.

Run: ``python benchmarks/bench_train.py PHOTO_FOLDER [--recipe tiny] [--steps 20] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from pixcolor.data import PhotoFolder, lab_constants, prepare_batch
from pixcolor.training.recipes import build


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos")
    parser.add_argument("--recipe", default="tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    gen, _, defaults = build(
        args.recipe, **({"pretrained_encoder": False} if args.recipe == "resnet18" else {})
    )
    gen.to(device).train()
    size = defaults["image_size"]
    opt = torch.optim.Adam(gen.parameters(), 1e-4, betas=(0.5, 0.999))
    const = lab_constants(gen)

    def step(rgb: torch.Tensor) -> None:
        light, ab = prepare_batch(rgb, **const, device=device)
        loss = torch.nn.functional.l1_loss(gen(light), ab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    dataset = PhotoFolder(args.photos, size=size, train=True)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        drop_last=True, persistent_workers=args.workers > 0, pin_memory=device.type == "cuda")  # fmt: skip
    batches = itertools.cycle(loader)
    memory = [next(batches) for _ in range(4)]

    for rgb in memory[:2]:  # warm-up (also starts the workers)
        step(rgb)
    sync()

    def timed(source) -> float:  # samples per second over args.steps steps
        start = time.perf_counter()
        for _ in range(args.steps):
            step(next(source))
        sync()
        return args.steps * args.batch_size / (time.perf_counter() - start)

    from_memory = timed(itertools.cycle(memory))
    from_files = timed(batches)

    with FlopCounterMode(display=False) as counter:
        step(memory[0])
    flops_per_step = counter.get_total_flops()
    n = 2048 if device.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    sync()
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    sync()
    matmul_gflops = 5 * 2 * n**3 / (time.perf_counter() - start) / 1e9
    step_gflops = flops_per_step / 1e9 * from_memory / args.batch_size

    params = sum(p.numel() for p in gen.parameters()) / 1e6
    print(f"recipe {args.recipe} ({params:.2f} M params), {size}x{size}, batch {args.batch_size}, "
          f"{args.workers} workers, {torch.get_num_threads()} threads, {device}")  # fmt: skip
    print(f"  step from tensors in memory: {from_memory:8.1f} samples/s")
    print(f"  step from photo files:       {from_files:8.1f} samples/s")
    print(
        f"  loader cost: {100 * (1 - from_files / from_memory):5.1f} % of throughput (goal < 5 %)"
    )
    print(f"  step: {flops_per_step / 1e9:.1f} GFLOP -> {step_gflops:.1f} GFLOP/s achieved")
    print(f"  float32 matmul {n}x{n}: {matmul_gflops:.1f} GFLOP/s -> the step runs at "
          f"{100 * step_gflops / matmul_gflops:.1f} % of it")  # fmt: skip


if __name__ == "__main__":
    main()

"""Trainer: phases, losses, exact resume after SIGKILL, DDP with gloo, run outputs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import pixcolor
from pixcolor import CheckpointError, PatchDiscriminator, Trainer, TrainerConfig, UNetGenerator
from pixcolor.training import Callback, EarlyStopping, GANLoss
from pixcolor.training.checkpoint import list_checkpoints


def make_photos(folder: Path, n: int = 12, size: int = 40, seed: int = 0) -> Path:
    """Small colourful synthetic photos: smooth gradients with a coloured blob."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        base = rng.uniform(0, 255, 3)
        tilt = rng.uniform(-120, 120, 3)
        image = base + tilt * (xx[..., None] * rng.uniform() + yy[..., None] * rng.uniform())
        cy, cx = rng.uniform(0.2, 0.8, 2)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < 0.04)[..., None]
        image = np.where(blob, rng.uniform(0, 255, 3), image)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"photo{i:02d}.png")
    return folder


def tiny_models(seed: int = 0, hints: bool = False) -> tuple[UNetGenerator, PatchDiscriminator]:
    """Tiny networks; with ``hints``, a hint model and a discriminator that sees the hints."""
    torch.manual_seed(seed)
    gen = UNetGenerator(
        encoder="pix2pix", base_channels=4, num_downs=5, dropout=0.5, hint_channels=3 * hints
    )
    disc = PatchDiscriminator(base_channels=4, n_layers=2, in_channels=6 if hints else 3)
    return gen, disc


def tiny_config(tmp: Path, **overrides: object) -> TrainerConfig:
    values: dict = dict(
        pretrain_epochs=1, gan_epochs=2, batch_size=4, image_size=32, num_workers=0,
        output_dir=str(tmp / "run"), progress=False, seed=3,
    )  # fmt: skip
    values.update(overrides)
    return TrainerConfig(**values)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photos(tmp_path_factory.mktemp("photos"))


class TestLosses:
    def test_vanilla_matches_bce(self) -> None:
        real, fake = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        expected = 0.5 * (bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake)))
        torch.testing.assert_close(GANLoss("vanilla").discriminator(real, fake), expected)
        torch.testing.assert_close(
            GANLoss("vanilla").generator(fake), bce(fake, torch.ones_like(fake))
        )

    def test_label_smoothing_and_lsgan(self) -> None:
        real, fake = torch.randn(4), torch.randn(4)
        loss = GANLoss("lsgan", real_label=0.9).discriminator(real, fake)
        torch.testing.assert_close(loss, 0.5 * (((real - 0.9) ** 2).mean() + (fake**2).mean()))

    def test_hinge(self) -> None:
        real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
        torch.testing.assert_close(
            GANLoss("hinge").discriminator(real, fake), torch.tensor(0.5 * (0.25 + 0.75))
        )
        torch.testing.assert_close(GANLoss("hinge").generator(fake), torch.tensor(0.75))

    def test_bad_mode(self) -> None:
        with pytest.raises(ValueError, match="mode must be one of .* got 'wgan'"):
            GANLoss("wgan")


class TestConfig:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
            ({"precision": "fp8"}, "precision must be one of .* got 'fp8'"),
            ({"gan_mode": "wgan"}, "gan_mode must be one of"),
            ({"pretrain_epochs": -1}, "pretrain_epochs must be >= 0, got -1"),
            ({"lr_decay": "step"}, "lr_decay must be one of .* got 'step'"),
        ],
    )
    def test_errors(self, kwargs: dict, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            TrainerConfig(**kwargs)

    def test_gan_needs_discriminator(self) -> None:
        gen, _ = tiny_models()
        with pytest.raises(ValueError, match="gan_epochs=2 needs a discriminator"):
            Trainer(gen, None, TrainerConfig(gan_epochs=2))

    @pytest.mark.parametrize("kind", ["linear", "cosine"])
    def test_lr_decay_per_phase(self, tmp_path: Path, photos: Path, kind: str) -> None:
        """Each phase starts at its base rate and decays by step, D and G alike."""
        seen: list[tuple[str, float, float | None]] = []

        class Record(Callback):
            def on_step_end(self, trainer: Trainer, logs: dict) -> None:
                opts = trainer.optimizers
                d = opts["discriminator"].param_groups[0]["lr"] if "discriminator" in opts else None
                seen.append((trainer.state["phase"], opts["generator"].param_groups[0]["lr"], d))

        gen, disc = tiny_models()
        cfg = tiny_config(tmp_path, pretrain_lr=1e-3, lr_g=4e-4, lr_d=2e-4, lr_decay=kind)
        Trainer(gen, disc, cfg, callbacks=[Record()]).fit(photos)
        pre = [s for s in seen if s[0] == "pretrain"]
        gan = [s for s in seen if s[0] == "gan"]
        assert len(pre) == 3 and len(gan) == 6  # 12 photos / batch 4: 3 steps per epoch
        for steps, base_g, base_d in ((pre, 1e-3, None), (gan, 4e-4, 2e-4)):
            for k, (_, lr_g, lr_d) in enumerate(steps):
                factor = (
                    1 - k / len(steps)
                    if kind == "linear"
                    else 0.5 * (1 + math.cos(math.pi * k / len(steps)))
                )
                assert lr_g == pytest.approx(base_g * factor)
                assert lr_d == (None if base_d is None else pytest.approx(base_d * factor))

    def test_resume_without_checkpoint(self, tmp_path: Path, photos: Path) -> None:
        gen, disc = tiny_models()
        with pytest.raises(CheckpointError, match="no checkpoint in"):
            Trainer(gen, disc, tiny_config(tmp_path)).fit(photos, resume="latest")

    def test_size_not_multiple_of_stride(self, tmp_path: Path) -> None:
        gen, disc = tiny_models()
        with pytest.raises(ValueError, match="multiple of the generator's stride 32, got 48"):
            Trainer(gen, disc, tiny_config(tmp_path, image_size=48))

    def test_too_few_photos(self, tmp_path: Path, photos: Path) -> None:
        gen, disc = tiny_models()
        with pytest.raises(ValueError, match="too few for batch_size=64"):
            Trainer(gen, disc, tiny_config(tmp_path, batch_size=64)).fit(photos)


class TestFit:
    def test_phases_outputs_and_retention(self, tmp_path: Path, photos: Path) -> None:
        gen, disc = tiny_models()
        trainer = Trainer(gen, disc, tiny_config(tmp_path, save_every_steps=2, keep_last=2))
        state = trainer.fit(photos, val=photos)
        run = tmp_path / "run"
        assert [h["phase"] for h in state["history"]] == ["pretrain", "gan", "gan"]
        assert state["global_step"] == 9  # 12 photos / batch 4 = 3 steps x 3 epochs
        assert (
            "d_loss" not in "".join(state["history"][0]) and "train_d_loss" in state["history"][1]
        )
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [m["epoch"] for m in metrics] == [1, 2, 3]
        assert all(np.isfinite(m["val_psnr"]) for m in metrics)
        assert (run / "losses.png").stat().st_size > 0
        assert sorted(p.name for p in (run / "samples").iterdir()) == [
            f"epoch-000{i}.png" for i in (1, 2, 3)
        ]
        assert Image.open(run / "samples" / "epoch-0003.png").size[0] > 3 * 32
        kept = [p.name for p in list_checkpoints(run / "checkpoints")]
        assert state["best_checkpoint"] in kept and kept[-2:] == [
            "step-000000008",
            "step-000000009",
        ]
        assert len(kept) <= 3 and not list((run / "checkpoints").glob(".tmp-*"))
        final = UNetGenerator.from_pretrained(run / "generator")
        torch.testing.assert_close(final.state_dict(), gen.state_dict())
        assert UNetGenerator.from_pretrained(run / "best" / "generator").config == gen.config
        run_config = json.loads((run / "config.json").read_text())
        assert (
            run_config["trainer"]["gan_epochs"] == 2
            and run_config["generator"]["encoder"] == "pix2pix"
        )

    def test_subclass_and_callbacks(self, tmp_path: Path, photos: Path) -> None:
        calls: list[str] = []

        class Bonus(Trainer):
            def generator_loss(self, batch, fake_ab):  # type: ignore[no-untyped-def]
                losses = super().generator_loss(batch, fake_ab)
                bonus = fake_ab.abs().mean()
                losses["bonus"] = bonus
                losses["loss"] = losses["loss"] - 0.1 * bonus
                return losses

        class Recorder(Callback):
            def on_fit_start(self, trainer: Trainer) -> None:
                calls.append("fit_start")

            def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
                calls.append("step")
                assert "bonus" in logs
                if trainer.state["global_step"] == 4:
                    trainer.should_stop = True

            def on_save(self, trainer: Trainer, path: Path) -> None:
                calls.append("save")

            def on_fit_end(self, trainer: Trainer) -> None:
                calls.append("fit_end")

        gen, disc = tiny_models()
        state = Bonus(gen, disc, tiny_config(tmp_path), callbacks=[Recorder()]).fit(photos)
        assert state["global_step"] == 4 and state["epoch"] == 1 and state["step_in_epoch"] == 1
        assert calls == ["fit_start", "step", "step", "step", "save", "step", "save", "fit_end"]

    def test_early_stopping(self, tmp_path: Path, photos: Path) -> None:
        stopper = EarlyStopping(metric="train_l1", patience=1, mode="max", min_delta=10.0)
        gen, disc = tiny_models()
        state = Trainer(gen, disc, tiny_config(tmp_path, output_dir=None), callbacks=[stopper]).fit(
            photos
        )
        assert state["epoch"] == 2  # the second epoch could not improve by 10

    def test_gradient_accumulation_matches_big_batch(self, tmp_path: Path, photos: Path) -> None:
        """Without batch norm, 2 x 2 accumulated equals one batch of 4."""
        results = []
        for batch, accum in ((4, 1), (2, 2)):
            torch.manual_seed(0)
            gen = UNetGenerator(
                encoder="pix2pix", base_channels=4, num_downs=5, norm="none", dropout=0.0
            )
            cfg = tiny_config(tmp_path, pretrain_epochs=1, gan_epochs=0, batch_size=batch,
                              grad_accum_steps=accum, output_dir=None)  # fmt: skip
            state = Trainer(gen, None, cfg).fit(photos)
            assert state["global_step"] == 3
            results.append(gen.state_dict())
        torch.testing.assert_close(results[0], results[1], atol=1e-6, rtol=1e-5)


_RUN = textwrap.dedent(
    """
    import os, signal, sys, torch
    sys.path.insert(0, {tests!r})
    from test_training import tiny_config, tiny_models
    from pathlib import Path
    from pixcolor import Trainer
    from pixcolor.training import Callback

    class Kill(Callback):
        def on_step_end(self, trainer, logs):
            if trainer.state["global_step"] == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)

    torch.set_num_threads(1)
    gen, disc = tiny_models(hints={hints!r})
    cfg = tiny_config(Path({tmp!r}), save_every_steps=2, lr_decay="linear")
    resume = {resume!r} or None
    Trainer(gen, disc, cfg, callbacks=[Kill()]).fit({photos!r}, val={photos!r}, resume=resume)
    """
)


def _train_subprocess(
    tmp: Path, photos: Path, kill_at: int, resume: str | None, hints: bool = False
) -> int:
    script = _RUN.format(
        tests=str(Path(__file__).parent),
        kill_at=kill_at,
        tmp=str(tmp),
        resume=resume,
        photos=str(photos),
        hints=hints,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script], env=env, timeout=300).returncode


@pytest.mark.parametrize(
    "hints", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["automatic", "hints"]
)
def test_resume_after_sigkill_is_bit_identical(tmp_path: Path, photos: Path, hints: bool) -> None:
    """A run killed in the GAN phase and resumed ends with the same bits as one never killed
    (a hint model's simulated hints included)."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert _train_subprocess(straight, photos, kill_at=-1, resume=None, hints=hints) == 0
    # SIGKILL at step 7
    assert _train_subprocess(killed, photos, kill_at=7, resume=None, hints=hints) == -9
    kept = [p.name for p in list_checkpoints(killed / "run" / "checkpoints")]
    assert kept[-1] == "step-000000006"  # the last save before the kill: steps 7+ are redone
    assert _train_subprocess(killed, photos, kill_at=-1, resume="latest", hints=hints) == 0
    for part in ("generator", "best/generator"):
        a = load_file(str(straight / "run" / part / "model.safetensors"))
        b = load_file(str(killed / "run" / part / "model.safetensors"))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{part} differs after resume"
    epochs = [
        json.loads(line)["epoch"]
        for line in (killed / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [1, 2, 3]  # nothing logged twice across the kill


_DDP = textwrap.dedent(
    """
    import os, sys, torch, torch.distributed as dist
    sys.path.insert(0, {tests!r})
    from test_training import tiny_config, tiny_models
    from pathlib import Path
    from safetensors.torch import save_file
    from pixcolor import Trainer

    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    gen, disc = tiny_models(seed=dist.get_rank())  # different starts: DDP must broadcast rank 0's
    cfg = tiny_config(Path({tmp!r}), pretrain_epochs=1, gan_epochs=1, batch_size=2)
    Trainer(gen, disc, cfg).fit({photos!r}, val={photos!r})
    state = {{k: v.contiguous() for k, v in gen.state_dict().items()}}
    save_file(state, os.path.join({tmp!r}, f"rank{{dist.get_rank()}}.safetensors"))
    dist.destroy_process_group()
    """
)


def test_ddp_two_processes_gloo(tmp_path: Path, photos: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(
        _DDP.format(tests=str(Path(__file__).parent), tmp=str(tmp_path), photos=str(photos))
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
    ]
    result = subprocess.run(cmd, env=env, timeout=300, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    a = load_file(str(tmp_path / "rank0.safetensors"))
    b = load_file(str(tmp_path / "rank1.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if "running" not in k and "num_batches" not in k)
    run = tmp_path / "run"
    # 12 photos over 2 ranks with batch 2: 3 steps per epoch, 2 epochs, rank 0 writes alone
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == [
        "step-000000003",
        "step-000000006",
    ]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_public_names() -> None:
    for name in ("Trainer", "TrainerConfig", "Callback"):
        assert name in pixcolor.__all__

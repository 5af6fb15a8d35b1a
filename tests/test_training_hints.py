"""Simulated hints for hint models: layouts, planes, the Trainer with hints, the CLI flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pixcolor import PatchDiscriminator, Trainer, UNetGenerator
from pixcolor.cli import main
from pixcolor.training.hints import (
    HintLayouts,
    HintSimulation,
    draw_hint_layout,
    hint_error,
    hint_planes,
)
from pixcolor.training.sampling import SeededDataset
from test_training import make_photos, tiny_config


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photos(tmp_path_factory.mktemp("photos"))


def tiny_hint_model(seed: int = 0, **kwargs: object) -> UNetGenerator:
    torch.manual_seed(seed)
    config = {"base_channels": 4, "num_downs": 5, "dropout": 0.0, **kwargs}
    return UNetGenerator(encoder="pix2pix", hint_channels=3, **config)


class TestLayouts:
    def test_distribution(self) -> None:
        """Share of photos without hints, mean count of the others, bounds and patch sides."""
        sim = HintSimulation(none_fraction=0.25, mean_count=6.0, max_count=40, patch_sizes=(2, 4))
        g = torch.Generator().manual_seed(0)
        layouts = torch.stack([draw_hint_layout(20, 30, sim, g) for _ in range(4000)])
        counts = (layouts[..., 2] > 0).sum(dim=1).float()
        assert abs((counts == 0).float().mean().item() - 0.25) < 0.03
        assert abs(counts[counts > 0].mean().item() - 6.0) < 0.3
        assert counts.max() <= 40
        used = layouts[layouts[..., 2] > 0]
        assert used[:, 0].min() == 0 and used[:, 0].max() == 19
        assert used[:, 1].min() == 0 and used[:, 1].max() == 29
        assert set(used[:, 2].tolist()) == {2, 3, 4}
        # used rows first
        first_unused = (layouts[..., 2] == 0).int().argmax(dim=1)
        assert torch.equal(first_unused[counts < 40], counts[counts < 40].long())

    def test_fixed_count_and_reproducible(self) -> None:
        sim = HintSimulation(count=7, max_count=10)
        a = draw_hint_layout(32, 32, sim, torch.Generator().manual_seed(5))
        b = draw_hint_layout(32, 32, sim, torch.Generator().manual_seed(5))
        assert torch.equal(a, b) and int((a[:, 2] > 0).sum()) == 7

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"none_fraction": 1.5}, r"none_fraction must be in \[0, 1\], got 1.5"),
            ({"mean_count": 0.5}, "mean_count must be >= 1, got 0.5"),
            ({"max_count": 0}, "max_count must be a positive int, got 0"),
            ({"patch_sizes": (3, 2)}, r"patch_sizes .* got \(3, 2\)"),
            ({"count": 60}, r"count must be in \[0, max_count=48\], got 60"),
        ],
    )
    def test_bad_simulation(self, kwargs: dict, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            HintSimulation(**kwargs)

    def test_per_sample_seeding_is_exact(self) -> None:
        """Same (seed, epoch, index): same crop and hints; another epoch: other hints."""
        images = [torch.zeros(3, 16, 16, dtype=torch.uint8) for _ in range(4)]
        data = SeededDataset(HintLayouts(images, HintSimulation(none_fraction=0.0)), seed=3)
        _, first = data[(0, 2)]
        _, again = data[(0, 2)]
        _, later = data[(1, 2)]
        assert torch.equal(first, again) and not torch.equal(first, later)

    def test_fixed_seed_ignores_the_global_rng(self) -> None:
        images = [torch.zeros(3, 16, 16, dtype=torch.uint8)] * 3
        data = HintLayouts(images, HintSimulation(count=4), seed=0)
        torch.manual_seed(1)
        a = data[1][1]
        torch.manual_seed(2)
        assert torch.equal(a, data[1][1]) and not torch.equal(a, data[2][1])


class TestPlanes:
    def test_patch_mean_mask_and_clipping(self) -> None:
        torch.manual_seed(0)
        ab = torch.rand(2, 2, 10, 12) - 0.5
        layout = torch.zeros(2, 3, 3, dtype=torch.int64)
        layout[0, 0] = torch.tensor([4, 5, 3])  # rows 3-5, columns 4-6
        layout[1, 0] = torch.tensor([0, 11, 4])  # clipped to rows 0-1, columns 9-11
        planes = hint_planes(ab, layout)
        torch.testing.assert_close(planes[0, :2, 4, 5], ab[0, :, 3:6, 4:7].mean(dim=(1, 2)))
        torch.testing.assert_close(planes[1, :2, 0, 11], ab[1, :, 0:2, 9:12].mean(dim=(1, 2)))
        assert planes[0, 2].sum() == 9 and planes[0, 2, 3:6, 4:7].min() == 1
        assert planes[1, 2].sum() == 6 and planes[1, 2, 0:2, 9:12].min() == 1
        assert planes[0, :2, 3:6, 4:7].std(dim=(1, 2)).max() < 1e-7  # one colour per patch
        assert (
            planes[..., 2:3, :, :].sum() == 15
            and (planes[:, :2] * (1 - planes[:, 2:])).abs().sum() == 0
        )

    def test_later_hint_wins_and_no_hints_is_zero(self) -> None:
        ab = torch.zeros(1, 2, 8, 8)
        ab[0, 0, :, :4], ab[0, 0, :, 4:] = 0.2, -0.4
        layout = torch.tensor([[[3, 2, 1], [3, 6, 1], [3, 3, 3], [0, 0, 0]]])
        planes = hint_planes(ab, layout)
        assert planes[0, 0, 3, 2].item() == pytest.approx(0.2 * 2 / 3 - 0.4 / 3)  # overwritten
        assert planes[0, 0, 3, 6].item() == pytest.approx(-0.4)
        assert hint_planes(ab, torch.zeros(1, 5, 3, dtype=torch.int64)).abs().sum() == 0

    def test_keeps_channels_last(self) -> None:
        ab = torch.zeros(2, 2, 8, 8).contiguous(memory_format=torch.channels_last)
        planes = hint_planes(ab, torch.tensor([[[1, 1, 1]], [[2, 2, 2]]]))
        assert planes.is_contiguous(memory_format=torch.channels_last)

    def test_shape_errors(self) -> None:
        with pytest.raises(
            ValueError, match=r"ab must have shape \(B, 2, H, W\), got \(1, 3, 8, 8\)"
        ):
            hint_planes(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 3, dtype=torch.int64))
        with pytest.raises(ValueError, match=r"layout must have shape \(2, K, 3\)"):
            hint_planes(torch.zeros(2, 2, 8, 8), torch.zeros(1, 1, 3, dtype=torch.int64))

    def test_hint_error(self) -> None:
        ab = torch.zeros(2, 2, 8, 8)
        planes = torch.zeros(2, 3, 8, 8)
        planes[0, :, 2, 2] = torch.tensor([0.5, -0.1, 1.0])
        err = hint_error(ab, planes)
        assert err[0].item() == pytest.approx(0.3) and torch.isnan(err[1])
        assert hint_error(planes[:, :2], planes)[0] == 0


class TestTrainerWithHints:
    def test_metrics_and_the_discriminator_input(self, tmp_path: Path, photos: Path) -> None:
        seen: list[int] = []

        class Spy(PatchDiscriminator):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                seen.append(x.shape[1])
                return super().forward(x)

        gen = tiny_hint_model()
        disc = Spy(base_channels=4, n_layers=2, in_channels=6)
        cfg = tiny_config(
            tmp_path, pretrain_epochs=1, gan_epochs=1, output_dir=None, hint_val_count=5
        )
        state = Trainer(gen, disc, cfg).fit(photos, val=photos)
        last = state["history"][-1]
        for key in ("val_psnr", "val_psnr_hints", "val_l1_hints", "val_hint_error"):
            assert key in last and last[key] == last[key], key  # present, not nan
        assert seen and set(seen) == {6}

    def test_automatic_model_has_no_hint_metrics(self, tmp_path: Path, photos: Path) -> None:
        torch.manual_seed(0)
        gen = UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5)
        cfg = tiny_config(tmp_path, pretrain_epochs=1, gan_epochs=0, output_dir=None)
        last = Trainer(gen, None, cfg).fit(photos, val=photos)["history"][-1]
        assert "val_psnr" in last and not any("hint" in k for k in last)

    def test_discriminator_channels_must_fit(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"takes 5 channels; it needs 3 \(L \+ ab\) or 6"):
            Trainer(
                tiny_hint_model(),
                PatchDiscriminator(base_channels=4, in_channels=5),
                tiny_config(tmp_path),
            )
        with pytest.raises(ValueError, match=r"takes 6 channels; it needs 3 \(L \+ ab\) or 3"):
            gen = UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5)
            Trainer(gen, PatchDiscriminator(base_channels=4, in_channels=6), tiny_config(tmp_path))

    def test_bad_hint_settings(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="mean_count must be >= 1, got 0.0"):
            tiny_config(tmp_path, hint_mean_count=0.0)
        with pytest.raises(ValueError, match="hint_val_count must be >= 0, got -1"):
            tiny_config(tmp_path, hint_val_count=-1)

    @pytest.mark.slow
    def test_the_model_learns_to_follow_hints(self, tmp_path: Path, photos: Path) -> None:
        """Dense hints make the hinted prediction much closer to the truth than the plain one."""
        gen = tiny_hint_model(base_channels=8)
        cfg = tiny_config(
            tmp_path, pretrain_epochs=8, gan_epochs=0, output_dir=None, pretrain_lr=2e-3,
            hint_none_fraction=0.0, hint_mean_count=20, hint_val_count=20,
        )  # fmt: skip
        history = Trainer(gen, None, cfg).fit(photos, val=photos)["history"]
        first, last = history[0], history[-1]
        assert last["val_l1_hints"] < 0.9 * last["val_l1"]
        assert last["val_hint_error"] < 0.85 * first["val_hint_error"]


def test_cli_train_hints(tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = ["--size", "128", "--batch-size", "4", "--workers", "0", "--no-progress"]
    run = tmp_path / "run"
    args = ["train", str(photos), "--output", str(run), "--val", str(photos), *tiny]
    code = main([*args, "--hints", "--hint-mean-count", "5", "--pretrain-epochs", "1", "--gan-epochs", "0", "--max-steps", "1"])  # fmt: skip
    assert code == 0
    assert json.loads((run / "generator" / "config.json").read_text())["hint_channels"] == 3
    saved = json.loads((run / "config.json").read_text())["trainer"]
    assert saved["hint_mean_count"] == 5.0
    auto = tmp_path / "auto"
    assert main(["train", str(photos), "--output", str(auto), *tiny, "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main(["train", str(photos), "--output", str(auto), *tiny, "--resume", "--hints"]) == 1
    assert "trains an automatic model" in capsys.readouterr().err

"""pixcolor._fold and pixcolor._inference: the network converted once for inference."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
from torch import nn

from helpers import randomise_batchnorm
from pixcolor import UNetGenerator, _inference, _tuning_cache
from pixcolor._fold import bake_reparametrizations, fold_batch_norms
from pixcolor._inference import InferenceModel

CPU = torch.device("cpu")
SHAPE = (1, 32, 32)


def _generator(encoder: str = "pix2pix", **kwargs: Any) -> UNetGenerator:
    torch.manual_seed(0)
    if encoder == "pix2pix":
        kwargs = {"base_channels": 8, "num_downs": 5, **kwargs}
    else:
        kwargs = {"base_channels": 8, **kwargs}
    return randomise_batchnorm(UNetGenerator(encoder=encoder, **kwargs), conv_bias=True).eval()


def _norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


class _ConvBn(nn.Module):
    """conv -> bn, plus variations that must not be folded."""

    def __init__(self, reuse: bool = False, inplace_relu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.reuse, self.inplace_relu = reuse, inplace_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.inplace_relu:
            y.relu_()
        out = self.bn(y)
        return out + y if self.reuse else out


class TestFold:
    @pytest.mark.parametrize(
        ("encoder", "norm", "expected"),
        [("pix2pix", "batch", 3 + 4), ("resnet18", "none", 20), ("resnet18", "batch", 37)],
    )
    def test_every_conv_norm_pair_is_folded_and_the_output_kept(
        self, encoder: str, norm: str, expected: int
    ) -> None:
        gen = _generator(encoder, norm=norm)
        x = torch.randn(2, 1, 64, 64)
        folded = copy.deepcopy(gen)
        assert fold_batch_norms(folded, x[:1]) == expected
        # pix2pix: the norms after convs; resnet: all but the bottleneck and skip norms
        assert _norms(folded) == _norms(gen) - expected
        with torch.no_grad():
            torch.testing.assert_close(folded(x), gen(x), atol=1e-5, rtol=1e-4)

    @pytest.mark.parametrize("kind", ["reuse", "inplace_relu"])
    def test_a_conv_output_used_elsewhere_or_changed_is_not_folded(self, kind: str) -> None:
        torch.manual_seed(0)
        model = randomise_batchnorm(_ConvBn(**{kind: True})).eval()
        x = torch.randn(1, 2, 8, 8)
        with torch.no_grad():
            expected = model(x)
        assert fold_batch_norms(model, x) == 0
        assert isinstance(model.bn, nn.BatchNorm2d)
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected)

    def test_training_mode_norms_are_left_alone(self) -> None:
        model = _ConvBn().train()
        assert fold_batch_norms(model, torch.randn(2, 2, 8, 8)) == 0

    @pytest.mark.parametrize("style", ["hook", "parametrization"])
    def test_spectral_norm_is_baked_then_folded(self, style: str) -> None:
        torch.manual_seed(0)
        model = randomise_batchnorm(_ConvBn())
        if style == "hook":
            nn.utils.spectral_norm(model.conv)
        else:
            nn.utils.parametrizations.spectral_norm(model.conv)
        x = torch.randn(1, 2, 8, 8)
        model(x)  # a power iteration in training mode, as training leaves it
        model.eval()
        with torch.no_grad():
            expected = model(x)
        assert bake_reparametrizations(model) == 1
        assert fold_batch_norms(model, x) == 1
        assert not model.conv._forward_pre_hooks and not hasattr(model.conv, "parametrizations")
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-4)


class TestInferenceModel:
    def test_same_output_as_the_generator_which_is_left_unchanged(self) -> None:
        gen = _generator()
        before = copy.deepcopy(gen.state_dict())
        model = InferenceModel(gen, CPU, SHAPE, precision="fp32")
        x = torch.rand(3, 1, 32, 64) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(model(x), gen(x), atol=1e-5, rtol=1e-4)
        assert model.folded == 7 and _norms(gen) == 7
        for name, tensor in gen.state_dict().items():
            assert torch.equal(tensor, before[name])

    @pytest.mark.parametrize("precision", ["bf16", "fp16"])
    @pytest.mark.parametrize("memory_format", ["channels_last", "contiguous"])
    def test_weights_cast_once_in_the_memory_format(
        self, precision: str, memory_format: str
    ) -> None:
        gen = _generator()
        model = InferenceModel(gen, CPU, SHAPE, precision=precision, memory_format=memory_format)
        assert (model.precision, model.memory_format) == (precision, memory_format)
        dtype = _inference.DTYPES[precision]
        weights = [p for p in model.network.parameters() if p.dim() == 4]
        assert all(p.dtype == dtype for p in model.network.parameters())
        layout = (
            torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
        )
        assert all(p.is_contiguous(memory_format=layout) for p in weights)
        x = torch.rand(2, 1, 32, 32) * 2 - 1
        out = model(x)
        assert out.dtype == torch.float32 and out.is_contiguous()
        with torch.no_grad():
            assert (out - gen(x)).abs().max() < 0.05

    def test_auto_times_the_candidates_once_per_structure(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seen: list[list[tuple[str, str]]] = []

        def fake(base: nn.Module, probe: torch.Tensor, candidates: list[Any]) -> Any:
            seen.append(candidates)
            return candidates[-1], dict.fromkeys(candidates, 1.0)

        monkeypatch.setattr(_inference, "_fastest", fake)
        monkeypatch.setattr(_inference, "_TUNED", {})
        for native in (False, True):
            monkeypatch.setattr(_inference, "cpu_has_bfloat16", lambda n=native: n)
            first = InferenceModel(_generator(), CPU, SHAPE)
            InferenceModel(_generator(base_channels=8), CPU, SHAPE)  # same structure: cached
            precisions = {p for p, _ in seen[-1]}
            assert precisions == ({"fp32", "bf16"} if native else {"fp32"})
            assert (first.precision, first.memory_format) == seen[-1][-1]
        assert len(seen) == 2
        InferenceModel(_generator(base_channels=4), CPU, SHAPE)  # another structure
        InferenceModel(_generator(), CPU, (1, 64, 64))  # another input shape
        assert len(seen) == 4

    def test_auto_keeps_the_fastest_accurate_candidate(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        gen = _generator()
        base = copy.deepcopy(gen)
        probe = _inference._probe(SHAPE, CPU)
        times = iter([3.0, 1.0, 2.0] * 4)
        monkeypatch.setattr(_inference, "_timed", lambda run, device: (run(), next(times))[1])
        candidates = [("fp32", "channels_last"), ("fp32", "contiguous"), ("fp16", "contiguous")]
        choice, best = _inference._fastest(base, probe, candidates)
        assert choice == ("fp32", "contiguous") and best[choice] == 1.0
        monkeypatch.setattr(_inference, "_MAX_DEVIATION", 0.0)  # fp16 would now be "wrong"
        times = iter([3.0, 2.0, 1.0] * 4)
        choice, best = _inference._fastest(base, probe, candidates[::2])
        assert choice == ("fp32", "channels_last") and list(best) == [choice]

    def test_folding_is_checked_on_a_small_crop(self) -> None:
        """Folding is found and checked on a crop of the probe (a multiple of the stride);
        the folded network still matches the original at the full size."""
        gen = _generator("resnet18", pretrained_encoder=False)
        probe = _inference._probe((1, 128, 96), CPU)
        crop = _inference._fold_probe(gen, probe)
        assert crop.shape == (1, 1, 64, 64) and torch.equal(crop, probe[..., :64, :64])
        assert _inference._fold_probe(nn.Conv2d(1, 1, 1), probe) is probe  # no stride
        assert _inference._fold_probe(gen, probe[..., :64, :32]).shape[-2:] == (64, 32)
        model = InferenceModel(gen, CPU, (1, 128, 96), precision="fp32")
        full = fold_batch_norms(copy.deepcopy(gen), probe)  # found on the whole probe
        assert model.folded == full > 0
        with torch.no_grad():
            torch.testing.assert_close(model(probe), gen(probe), atol=1e-4, rtol=1e-4)

    def test_every_candidate_is_warmed_up_before_it_is_timed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A first call (kernels built, weights laid out) is never the one timed: all
        candidates run once, then timing rounds follow, as many as the budget allows."""
        base = copy.deepcopy(_generator())
        probe = _inference._probe(SHAPE, CPU)
        calls: list[str] = []

        def convert(base: nn.Module, precision: str, fmt: str) -> Any:
            return lambda x: calls.append(f"{precision} {fmt}") or torch.zeros(1, 2, 32, 32)

        monkeypatch.setattr(_inference, "_convert", convert)
        timed: list[int] = []

        def timer(run: Any, device: torch.device) -> float:
            timed.append(len(calls))  # calls made before this timed one
            run()
            return 1.0

        monkeypatch.setattr(_inference, "_timed", timer)
        candidates = [("fp32", "channels_last"), ("fp32", "contiguous")]
        _inference._fastest(base, probe, candidates)
        assert calls[:2] == ["fp32 channels_last", "fp32 contiguous"]  # the warm-ups
        assert timed[0] == 2 and len(timed) == len(candidates) * _inference._ROUNDS
        calls.clear(), timed.clear()
        monkeypatch.setattr(_inference, "_TUNE_BUDGET_S", 0.0)  # slow calls: one round
        _inference._fastest(base, probe, candidates)
        assert len(calls) == 4 and len(timed) == len(candidates)

    def test_the_choice_is_kept_on_disk_for_the_next_process(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        measured: list[object] = []

        def fake(base: nn.Module, probe: torch.Tensor, candidates: list[Any]) -> Any:
            measured.append(candidates)
            return candidates[-1], dict.fromkeys(candidates, 0.5)

        monkeypatch.setattr(_inference, "_fastest", fake)
        monkeypatch.setattr(_inference, "_TUNED", {})
        first = InferenceModel(_generator(), CPU, SHAPE)
        assert len(measured) == 1
        monkeypatch.setattr(_inference, "_TUNED", {})  # a new process
        again = InferenceModel(_generator(), CPU, SHAPE)
        assert len(measured) == 1  # read from disk, not measured
        assert (again.precision, again.memory_format) == (first.precision, first.memory_format)
        (record,) = (_tuning_cache.cache_root() / "inference").glob("*.json")
        saved = json.loads(record.read_text())
        assert saved["choice"] == [first.precision, first.memory_format]
        assert saved["machine"]["torch"] == torch.__version__
        record.write_text("{not json")  # damaged: measured again, then rewritten
        monkeypatch.setattr(_inference, "_TUNED", {})
        InferenceModel(_generator(), CPU, SHAPE)
        assert len(measured) == 2 and json.loads(record.read_text())["choice"]
        monkeypatch.setattr(_inference, "_TUNED", {})
        InferenceModel(_generator(), CPU, (1, 64, 64))  # another input shape: another key
        assert len(measured) == 3

    def test_measured_choice_on_this_machine(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_inference, "_TUNED", {})
        model = InferenceModel(_generator(), CPU, SHAPE)
        assert model.precision in _inference._precisions(CPU)
        assert model.memory_format in ("channels_last", "contiguous")
        assert "InferenceModel(backend='torch'" in repr(model)

    def test_device_candidates(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: True)
        assert _inference._precisions(torch.device("cuda")) == ["fp32", "fp16", "bf16"]
        assert _inference._precisions(torch.device("mps")) == ["fp32", "fp16"]
        assert _inference._formats(torch.device("mps")) == ["contiguous"]
        assert _inference._formats(torch.device("cuda")) == ["channels_last", "contiguous"]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"precision": "half"}, "precision must be one of auto, fp32, bf16, fp16, int8"),
            ({"backend": "tensorrt"}, "backend must be one of torch, onnxruntime; got"),
            ({"memory_format": "nhwc"}, "memory_format must be one of auto, channels_last"),
            ({"precision": "int8"}, "precision 'int8' needs backend='onnxruntime'"),
            ({"backend": "onnxruntime", "precision": "bf16"}, "not offered by the onnxruntime"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            InferenceModel(_generator(), CPU, SHAPE, **kwargs)

    def test_onnxruntime_runs_on_the_cpu_only(self) -> None:
        with pytest.raises(ValueError, match="runs on the CPU, got device 'cuda'"):
            InferenceModel(_generator(), torch.device("cuda"), SHAPE, backend="onnxruntime")


class TestHintModels:
    """Hint models (``hint_channels > 0``) take their hint planes as a second input."""

    @staticmethod
    def _hint_generator(**kwargs: Any) -> UNetGenerator:
        return _generator(hint_channels=3, **kwargs)

    @staticmethod
    def _planes(batch: int, side: int = 32) -> torch.Tensor:
        planes = torch.zeros(batch, 3, side, side)
        planes[:, 0, 5, 7], planes[:, 1, 5, 7], planes[:, 2, 5, 7] = 0.4, -0.3, 1.0
        planes[-1, :2, 20, 9], planes[-1, 2, 20, 9] = torch.tensor([-0.5, 0.2]), 1.0
        return planes

    @pytest.mark.parametrize("spread", [False, pytest.param(True, marks=pytest.mark.slow)])
    def test_same_output_as_the_generator_with_and_without_hints(self, spread: bool) -> None:
        gen = self._hint_generator(hint_spread=spread, hint_residual=spread)
        model = InferenceModel(gen, CPU, SHAPE, precision="fp32")
        assert model.hint_channels == 3 and model.folded == 7
        x, planes = torch.rand(2, 1, 32, 32) * 2 - 1, self._planes(2)
        with torch.no_grad():
            with_hints, without = gen(x, planes), gen(x)
        assert (with_hints - without).abs().max() > 1e-3  # the hints matter
        torch.testing.assert_close(model(x, planes), with_hints, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model(x), without, atol=1e-5, rtol=1e-4)

    def test_hints_for_a_model_without_hint_channels_are_refused(self) -> None:
        model = InferenceModel(_generator(), CPU, SHAPE, precision="fp32")
        assert model.hint_channels == 0
        with pytest.raises(ValueError, match="no hint channels"):
            model(torch.zeros(1, 1, 32, 32), self._planes(1))
        with pytest.raises(ValueError, match="hint_channels must be an int >= 0, got -1"):
            InferenceModel(_generator(), CPU, SHAPE, hint_channels=-1)

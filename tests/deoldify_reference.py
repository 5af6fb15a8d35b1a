"""DeOldify's own generator, for tests/test_deoldify.py: run with the reference venv's Python.

Builds each requested network exactly as DeOldify does (``DynamicUnetDeep`` /
``DynamicUnetWide`` from the ``deoldify`` 0.0.1 wheel on PyPI, with its vendored fastai
v1), gives it random weights that move every tensor off its default (batch-norm
statistics, biases, the self-attention gain, spectral-norm ``u``/``v`` set by a few power
iterations so that activations stay in range), runs it in eval mode and writes, per
network, ``<name>.safetensors`` holding its float32 ``state_dict()`` (keys ``state.*``), the
input ``input``, the output ``output``, the pre-sigmoid output ``logits``, and
``output64``, the output of the same network and input cast to float64.

Usage::

    .venv-deoldify/bin/python tests/deoldify_reference.py OUT_DIR \
        artistic:deep:resnet34:1.5 stable:wide:resnet101:2 --size 64 80 --seed 0

Only the standard library is imported at module level, so that pytest's doctest
collection can import this file from pixcolor's own environment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("networks", nargs="+", help="name:deep|wide:resnetNN:nf_factor")
    parser.add_argument("--size", type=int, nargs=2, default=(64, 80), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import warnings

    warnings.filterwarnings("ignore")
    import torch
    from deoldify.unet import DynamicUnetDeep, DynamicUnetWide
    from fastai.layers import NormType
    from fastai.vision import models
    from fastai.vision.learner import create_body
    from safetensors.torch import save_file

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for spec in args.networks:
        name, decoder, arch, nf_factor = spec.split(":")
        torch.manual_seed(args.seed)
        unet = {"deep": DynamicUnetDeep, "wide": DynamicUnetWide}[decoder]
        net = unet(
            create_body(getattr(models, arch), False),
            n_classes=3,
            blur=True,
            self_attention=True,
            y_range=(-3.0, 3.0),
            norm_type=NormType.Spectral,
            last_cross=True,
            bottle=False,
            nf_factor=float(nf_factor) if decoder == "deep" else int(float(nf_factor)),
        )
        _randomise(net, torch)
        net.eval()
        logits: list[torch.Tensor] = []
        hook = net.layers[-2].register_forward_hook(
            lambda m, i, o, out=logits: out.append(o.detach().clone())
        )
        x = torch.randn(args.batch, 3, *args.size)
        with torch.no_grad():
            y = net(x)
        hook.remove()
        tensors = {f"state.{k}": v.contiguous() for k, v in net.state_dict().items()}
        tensors.update(input=x, output=y, logits=logits[0])
        with torch.no_grad():  # float64: free of float32's accumulated rounding
            tensors["output64"] = net.double()(x.double())
        save_file(tensors, str(args.out_dir / f"{name}.safetensors"))
        n_params = sum(p.numel() for p in net.parameters())
        n_sn = sum(1 for k in net.state_dict() if k.endswith("weight_u"))
        print(
            f"{name}: {type(net).__name__}({arch}, nf_factor={nf_factor}), "
            f"{n_params} parameters, {n_sn} spectral-norm layers"
        )
    return 0


def _randomise(net, torch) -> None:
    """Move every tensor off its initial value (seeded by the caller)."""
    from torch import nn

    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
            elif isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.bias is not None:
                module.bias.normal_(0.0, 0.05)
            if hasattr(module, "gamma") and isinstance(module.gamma, nn.Parameter):
                module.gamma.fill_(0.7)  # self-attention: 0 at init would hide it
            if hasattr(module, "weight_u"):  # spectral norm: a few power iterations
                w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
                u = module.weight_u
                for _ in range(3):
                    v = nn.functional.normalize(w.t() @ u, dim=0)
                    u = nn.functional.normalize(w @ v, dim=0)
                module.weight_u.copy_(u)
                module.weight_v.copy_(v)
            if hasattr(module, "weight_g"):  # weight norm: a gain that is not ||v||
                module.weight_g.uniform_(0.5, 1.5)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Builds the venv in which tests/test_deoldify.py runs DeOldify's own generator, to check
# pixcolor's DeOldifyGenerator against it tensor for tensor:
#
#     bash scripts/make_deoldify_reference_venv.sh [TARGET=.venv-deoldify] [BASE=.venv]
#
# TARGET holds the `deoldify` 0.0.1 wheel from PyPI (DeOldify's source with its vendored
# fastai v1), installed without its dependency list (jupyterlab, wandb, opencv, yt-dlp, ...:
# the network code needs none of them), plus setuptools<70 (fastai v1 imports pkg_resources),
# requests and safetensors. torch, torchvision, numpy, scipy, pandas, matplotlib and
# fastprogress come from BASE, pixcolor's venv with the fastai extra, through a .pth file:
# nothing large is installed twice, and TARGET's own packages (fastai v1 above all) come
# first on its path. At the end the network is imported; a TARGET that cannot is removed,
# so the tests skip (and say why) rather than fail on a half-built venv.
set -euo pipefail
target=${1:-.venv-deoldify}
base=${2:-.venv}

base_site=$("$base/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf "$target"
"$base/bin/python" -m venv --without-pip "$target" 2>/dev/null || python3 -m venv --without-pip "$target"
site=$("$target/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
pip_install() { "$base/bin/python" -m pip install --quiet --target "$site" "$@"; }
pip_install --no-deps "deoldify==0.0.1" "setuptools<70"
pip_install requests safetensors
echo "$base_site" > "$site/_pixcolor_base.pth"

if ! "$target/bin/python" -W ignore -c "import deoldify.unet, fastai.vision.learner, safetensors.torch" >/dev/null 2>&1; then
    echo "make_deoldify_reference_venv: $target cannot import DeOldify's network; removed" >&2
    "$target/bin/python" -W ignore -c "import deoldify.unet" 2>&1 | tail -3 >&2 || true
    rm -rf "$target"
    exit 1
fi
echo "make_deoldify_reference_venv: $target ready (torch from $base)"

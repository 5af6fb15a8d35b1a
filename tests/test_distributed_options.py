"""``--engine ray``'s driver refuses what its workers or ``ray.init`` would fail on, before
Ray starts, with one line each: these tests need Ray installed but start no Ray instance."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import torch

from pixcolor.cli import main
from pixcolor.errors import ClusterError

ASSETS = Path(__file__).parent / "assets"
PHOTO = str(ASSETS / "gray_camera.jpg")

ray = pytest.importorskip("ray", reason="pixcolor[ray] is not installed")
pytest.importorskip("ray.data", reason="pixcolor[ray] is not installed")


@pytest.fixture(autouse=True)
def _no_ray_running(monkeypatch: pytest.MonkeyPatch) -> None:
    if ray.is_initialized():
        pytest.skip("a Ray instance runs in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def colorize(tmp_path: Path, *options: str) -> int:
    return main(["colorize", PHOTO, "-o", str(tmp_path / "out"), "--engine", "ray",
                 "--no-progress", *options])  # fmt: skip


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--precision", "int8"), "precision 'int8' needs backend='onnxruntime'"),
        pytest.param(
            ("--device", "cuda"),
            "device 'cuda' is not available here: this torch finds no CUDA GPU",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here"),
        ),
        (("--device", "cuda:x"), "device 'cuda:x' is not a device name torch knows"),
    ],
)
def test_worker_options_refused_before_ray_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], message: str
) -> None:
    code = colorize(tmp_path, *options)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith(f"pixcolor colorize: error: {message}")
    assert not ray.is_initialized() and not (tmp_path / "out").exists()


def test_unknown_colorizer_option_refused_before_ray_starts(tmp_path: Path) -> None:
    from pixcolor.distributed import colorize_files

    with pytest.raises(TypeError, match="unknown Colorizer option.*render_szie"):
        colorize_files([PHOTO], tmp_path, progress=False, render_szie=64)
    assert not ray.is_initialized()


def test_address_where_nothing_answers_fails_at_once_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    code = colorize(tmp_path, "--ray-address", f"127.0.0.1:{port}")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and time.monotonic() - start < 10
    assert len(err) == 1
    assert err[0].startswith(
        f"pixcolor colorize: error: Ray address '127.0.0.1:{port}': nothing answers at "
        f"127.0.0.1:{port}"
    )

    from pixcolor.distributed import colorize_files

    with pytest.raises(ClusterError, match=f"ray://127.0.0.1:{port}"):
        colorize_files([PHOTO], tmp_path, address=f"ray://127.0.0.1:{port}", progress=False)
    with pytest.raises(ValueError, match="'nowhere' is not an address; use auto, HOST:PORT"):
        colorize_files([PHOTO], tmp_path, address="nowhere", progress=False)
    assert not ray.is_initialized() and not (tmp_path / "out").exists()


def test_auto_without_a_cluster_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ray._private.services import canonicalize_bootstrap_address

    try:
        canonicalize_bootstrap_address("auto")
    except ConnectionError:
        pass
    else:
        pytest.skip("a Ray cluster runs on this machine")
    code = colorize(tmp_path, "--ray-address", "auto")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        "pixcolor colorize: error: Ray address 'auto': no running Ray cluster found on this "
        "machine; start one (ray start --head), give the head node's HOST:PORT, or give no "
        "address to start a Ray instance for this run"
    ]


def test_no_gpus_message_names_the_keywords_and_the_flags() -> None:
    from pixcolor.distributed import _pool_size

    class NoGpus:
        @staticmethod
        def cluster_resources() -> dict[str, float]:
            return {"CPU": 2.0}

    with pytest.raises(ValueError) as caught:
        _pool_size(NoGpus(), None, None, 0.5)
    assert str(caught.value) == (
        "gpus_per_worker=0.5 (--gpus-per-worker) but the Ray cluster has 0 GPUs; run on GPU "
        "nodes, give the number of workers (workers=, --workers) for an autoscaling cluster, "
        "or leave gpus_per_worker at 0 to run on CPUs"
    )

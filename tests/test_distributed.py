"""``pixcolor colorize --engine ray`` (pixcolor.distributed) on a local Ray instance with 2 CPUs:
the same bytes as the local engine, resumable, exactly once when a worker is killed mid-job.

Marked ``ray`` (and ``slow``): they run in CI; ``-m 'not ray'`` leaves them out. One Ray
instance serves the whole module (it takes seconds to start) and is shut down after it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from pixcolor import Colorizer
from pixcolor.batch import colorize_files as colorize_locally
from pixcolor.cli import main

ASSETS = Path(__file__).parent / "assets"
OPTIONS = {"recursive": True, "render_size": 32, "batch_size": 4, "progress": False}
PHOTOS = 200  # "a folder of a few hundred photos", small ones


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="pixcolor[ray] is not installed")
    pytest.importorskip("ray.data", reason="pixcolor[ray] is not installed")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def album(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred small photos in two folders: JPEGs (gray, colour, qualities, an ICC
    profile), PNGs (gray, with alpha)."""
    root = tmp_path_factory.mktemp("photos") / "album"
    (root / "1950s").mkdir(parents=True)
    (root / "1960s").mkdir()
    sources = [Image.open(ASSETS / name).convert("RGB") for name in sorted(os.listdir(ASSETS))
               if name.endswith(".jpg")]  # fmt: skip
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rng = np.random.default_rng(0)
    for i in range(PHOTOS):
        source = sources[i % len(sources)]
        w, h = int(rng.integers(40, 72)), int(rng.integers(40, 72))
        x, y = int(rng.integers(0, source.width - w)), int(rng.integers(0, source.height - h))
        photo = source.crop((x, y, x + w, y + h))
        folder = root / ("1950s" if i % 2 else "1960s")
        if i % 5 == 0:
            photo.convert("LA").save(folder / f"p{i:03d}.png")
        elif i % 5 == 1:
            photo.convert("L").save(folder / f"p{i:03d}.png")
        elif i % 5 == 2:
            photo.save(folder / f"p{i:03d}.jpg", quality=70, icc_profile=srgb)
        else:
            photo.convert("L").save(folder / f"p{i:03d}.jpg", quality=int(rng.integers(60, 95)))
    return root


@pytest.fixture(scope="module")
def local_outputs(album: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``--engine local`` writes: the reference for every test below."""
    out = tmp_path_factory.mktemp("local")
    colorizer = Colorizer.from_pretrained(model_dir, device="cpu", precision="fp32")
    report = colorize_locally(colorizer, [album], out, **OPTIONS)
    assert len(report.written) == PHOTOS and not report.failed
    return out


def colorize_on_ray(*args: object, **kwargs: object) -> object:
    from pixcolor.distributed import colorize_files

    return colorize_files(*args, **{**OPTIONS, "device": "cpu", "precision": "fp32", **kwargs})


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def assert_same_files(out: Path, reference: Path) -> None:
    got, expected = files(out), files(reference)
    assert sorted(got) == sorted(expected)  # no more, no fewer, no temporaries
    different = [name for name in expected if got[name] != expected[name]]
    assert not different, f"{len(different)} outputs differ from --engine local: {different[:5]}"


@pytest.mark.ray
@pytest.mark.slow
def test_same_bytes_as_local_then_resumes(
    ray_instance: object, album: Path, model_dir: Path, local_outputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    report = colorize_on_ray([album], out, model=model_dir, workers=2)
    assert len(report.written) == PHOTOS and not report.failed and not report.skipped
    assert_same_files(out, local_outputs)

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = colorize_on_ray([album], out, model=model_dir, workers=2)
    assert not again.written and not again.failed and len(again.skipped) == PHOTOS
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps  # nothing written

    deleted = sorted(out.rglob("*.*"))[::37]
    for path in deleted:
        path.unlink()
    resumed = colorize_on_ray([album], out, model=model_dir, workers=2)
    assert sorted(resumed.written) == deleted and len(resumed.skipped) == PHOTOS - len(deleted)
    assert_same_files(out, local_outputs)
    untouched = [p for p in stamps if p.is_file() and p not in deleted]
    assert all(p.stat().st_mtime_ns == stamps[p] for p in untouched)


@pytest.mark.ray
@pytest.mark.slow
def test_file_uris(
    ray_instance: object, album: Path, model_dir: Path, local_outputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "uri out"  # a space, quoted in the URI
    report = colorize_on_ray(
        [album.as_uri()], out.as_uri(), model=model_dir, workers=1, report_path=None
    )
    assert len(report.written) == PHOTOS and not report.failed
    assert_same_files(out, local_outputs)


@pytest.mark.ray
@pytest.mark.slow
def test_cli_bad_file_recorded_and_skipped_with_report(
    ray_instance: object, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    for i, name in enumerate(("astronaut.jpg", "gray_camera.jpg", "rocket.jpg")):
        Image.open(ASSETS / name).resize((48, 40)).save(src / f"{i}.jpg")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (src / "0 colour.png").write_bytes(b"")  # empty
    out, log = tmp_path / "out", tmp_path / "logs" / "report.jsonl"
    code = main(["colorize", str(src), "-o", str(out), "--model", str(model_dir),
                 "--render-size", "32", "--no-progress", "--engine", "ray", "--workers", "2",
                 "--device", "cpu", "--report", str(log)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "3 written, 0 skipped (output exists), 2 failed" in captured.out
    assert "broken.jpg" in captured.err and "0 colour.png" in captured.err
    assert sorted(p.name for p in (out / "scans").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((Path(e["input"]).name, e["status"]) for e in lines) == [
        ("0 colour.png", "failed"), ("0.jpg", "written"), ("1.jpg", "written"),
        ("2.jpg", "written"), ("broken.jpg", "failed"),
    ]  # fmt: skip
    assert all(e["output"].startswith(str(out)) for e in lines)
    assert all((e["reason"] is None) == (e["status"] == "written") for e in lines)

    code = main(["colorize", str(src), "-o", str(out), "--model", str(model_dir),
                 "--render-size", "32", "--no-progress", "--engine", "ray", "--workers", "2",
                 "--device", "cpu", "--report", str(log)])  # fmt: skip
    assert code == 1 and "0 written, 3 skipped (output exists), 2 failed" in capsys.readouterr().out
    statuses = sorted(json.loads(line)["status"] for line in log.read_text().splitlines())
    assert statuses == ["failed", "failed", "skipped", "skipped", "skipped"]


@pytest.mark.ray
@pytest.mark.slow
def test_worker_killed_mid_job_loses_and_duplicates_nothing(
    ray_instance: object, album: Path, model_dir: Path, local_outputs: Path, tmp_path: Path
) -> None:
    psutil = pytest.importorskip("psutil")  # comes with ray
    out = tmp_path / "out"
    result: dict[str, object] = {}

    def job() -> None:
        try:
            result["report"] = colorize_on_ray([album], out, model=model_dir, workers=2,
                                               batch_size=2)  # fmt: skip
        except BaseException as err:  # re-raised below
            result["error"] = err

    thread = threading.Thread(target=job)
    thread.start()
    killed, written_at_kill = None, 0
    deadline = time.monotonic() + 300
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        written = sum(1 for _ in out.rglob("*.*")) if out.exists() else 0
        actors = _actor_processes(psutil)
        if written >= 4 and actors:
            killed, written_at_kill = actors[0], written
            os.kill(killed.pid, signal.SIGKILL)
        else:
            time.sleep(0.005)
    thread.join(timeout=600)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    assert killed is not None, "the job ended before a worker could be killed"
    assert written_at_kill < PHOTOS  # the kill came mid-job
    report = result["report"]
    assert not report.failed and len(report.written) == PHOTOS  # type: ignore[attr-defined]
    assert_same_files(out, local_outputs)  # each input: one complete output, no temporaries


def _actor_processes(psutil: object) -> list[object]:
    """This test session's colorize actors (Ray names their processes after the class)."""
    found = []
    for child in psutil.Process().children(recursive=True):  # type: ignore[attr-defined]
        try:
            if "_ColorizeWorker" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # type: ignore[attr-defined]
            continue
    return found


def test_engine_ray_without_ray_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    Image.open(ASSETS / "gray_camera.jpg").save(tmp_path / "a.jpg")
    code = main(["colorize", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "out"),
                 "--engine", "ray", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        "pixcolor colorize: error: --engine ray needs Ray Data: pip install 'pixcolor[ray]'"
    ]
    assert not (tmp_path / "out").exists()


def test_ray_options_need_engine_ray(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["colorize", str(ASSETS / "gray_camera.jpg"), "-o", str(tmp_path),
                 "--workers", "2", "--gpus-per-worker", "0.5"])  # fmt: skip
    assert code == 1
    assert "--workers, --gpus-per-worker only apply with --engine ray" in capsys.readouterr().err
    code = main(["colorize", str(ASSETS / "gray_camera.jpg"), "-o", str(tmp_path),
                 "--workers", "2"])  # fmt: skip
    assert code == 1
    assert "--workers only applies with --engine ray" in capsys.readouterr().err


def test_deoldify_model_runs_on_workers_as_locally(tmp_path: Path) -> None:
    """The driver ships any generator class a saved model holds (here a DeOldifyGenerator,
    as the deoldify presets), and a worker writes the local engine's bytes with it; run
    without Ray: the driver's reading and one worker's batch."""
    from pixcolor import DeOldifyGenerator
    from pixcolor.distributed import _ColorizeWorker, _read_weights

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = tmp_path / "deoldify"
    DeOldifyGenerator(encoder="resnet18", decoder="wide", nf_factor=0.0625).save_pretrained(model)
    src = tmp_path / "in"
    src.mkdir()
    Image.open(ASSETS / "gray_camera.jpg").resize((48, 40)).save(src / "a.jpg")
    options = {"render_size": 32, "progress": False}
    colorizer = Colorizer.from_pretrained(
        model, device="cpu", precision="fp32", memory_format="contiguous"
    )
    colorize_locally(colorizer, [src / "a.jpg"], tmp_path / "local", **options)

    worker = _ColorizeWorker({
        "weights": _read_weights(model, {}), "device": "cpu", "precision": "fp32",
        "colorizer_kwargs": {"memory_format": "contiguous"}, "threads": torch.get_num_threads(),
        "overwrite": False,
        "render_size": 32, "saturation": 1.0,
    })  # fmt: skip
    out = tmp_path / "ray" / "a.jpg"
    result = worker({"index": np.array([0]), "input": np.array([str(src / "a.jpg")]),
                     "output": np.array([str(out)])})  # fmt: skip
    assert result["status"].tolist() == ["written"]
    assert out.read_bytes() == (tmp_path / "local" / "a.jpg").read_bytes()


@pytest.mark.ray
@pytest.mark.slow
def test_cli_sigterm_interrupts_cleanly_and_reports_what_was_written(
    album: Path, model_dir: Path, tmp_path: Path
) -> None:
    """A kill of the driver ends as Ctrl-C does with the local engine (status 130, one
    line, no Ray crash dump), and the report counts every output on disk as written."""
    import subprocess

    out, log = tmp_path / "out", tmp_path / "report.jsonl"
    command = [sys.executable, "-m", "pixcolor", "colorize", str(album), "-o", str(out),
               "--recursive", "--model", str(model_dir), "--render-size", "32",
               "--batch-size", "2", "--no-progress", "--engine", "ray", "--workers", "2",
               "--cpus-per-worker", "1", "--device", "cpu", "--report", str(log)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    job = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job.poll() is None:
        if out.exists() and sum(1 for _ in out.rglob("*.*")) >= 6:
            break
        time.sleep(0.02)
    assert job.poll() is None, "the job ended before it could be killed"
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == "pixcolor colorize: interrupted", err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    on_disk = sorted(p for p in out.rglob("*") if p.is_file())
    assert not [p for p in on_disk if p.name.startswith(".")]  # no temporaries left
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    written = sorted(Path(e["output"]) for e in entries if e["status"] == "written")
    assert written == on_disk and len(written) < PHOTOS
    assert all(e["reason"].startswith("not done: interrupted") for e in entries
               if e["status"] == "failed")  # fmt: skip

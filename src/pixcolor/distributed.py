"""Colorize archives of millions of photos on a Ray cluster: ``pixcolor colorize --engine ray``.

:func:`colorize_files` does what :func:`pixcolor.batch.colorize_files` does (the same plan,
the same skipping of existing outputs, the same per-batch step, so the same bytes in every
output file) on `Ray Data <https://docs.ray.io/en/latest/data/data.html>`_, which spreads
the work over every machine of a cluster and survives lost workers:

* The driver (the machine you run it on) lists the inputs and plans one output each
  (:func:`pixcolor.batch.plan_outputs`), drops the outputs that exist unless
  ``overwrite``, and hands Ray a dataset of ``(input, output)`` paths: one block per
  network batch, so photos never travel through Ray, only their paths.
* ``map_batches`` runs a pool of actors, each holding one :class:`~pixcolor.Colorizer`
  (the model is loaded once per actor, from weights the driver read and shipped, so the
  model need not exist on the workers): an actor decodes its batch, runs the network on
  it and writes every output atomically (:func:`pixcolor.batch.colorize_batch`). Each
  actor holds at most one batch of decoded photos and has at most two batches queued.
* Every file's outcome streams back to the driver, which writes the JSON Lines report as
  it goes (``report_path``) and returns a :class:`~pixcolor.batch.BatchReport`.

Faults: Ray restarts an actor whose process dies and runs its unfinished batches again
(Ray Data's policy: without limit, as preemptible clusters need). Outputs are published atomically, so a batch run twice
finds the outputs its first attempt finished and writes the others: each input ends with
exactly one complete output, and the temporary files of an attempt killed mid-write are
removed when the job ends. A batch that fails on every attempt does not stop the job: its
files are reported as failed (``not done``), as are all files left when the job itself
stops, and a rerun does just those.

Install with ``pip install 'pixcolor[ray]'``; pixcolor imports without Ray.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pixcolor import _storage
from pixcolor._devices import parse_device
from pixcolor._report import ReportLog
from pixcolor._storage import Location, RemotePath
from pixcolor.batch import BatchReport, _is_video, _plan_pending, colorize_batch

__all__ = ["colorize_files"]

logger = logging.getLogger(__name__)

# Blocks of the input dataset at most (a block is a unit of scheduling and of retry):
# beyond this many batches a block holds several, so millions of photos stay cheap to plan.
_MAX_BLOCKS = 20_000
# Batches queued at each actor beyond the one it runs: hides the scheduling round trip.
_QUEUED_PER_WORKER = 2
_RETRIED = "written by an earlier attempt of its batch (a worker was lost)"
_INSTALL = "--engine ray needs Ray Data: pip install 'pixcolor[ray]'"


def colorize_files(
    inputs: Sequence[str | os.PathLike[str] | RemotePath],
    output: str | os.PathLike[str] | RemotePath,
    *,
    model: str | os.PathLike[str] | None = None,
    device: str | None = None,
    precision: str = "auto",
    recursive: bool = False,
    overwrite: bool = False,
    render_size: int | None = None,
    saturation: float = 1.0,
    batch_size: int = 4,
    progress: bool = True,
    report_path: str | os.PathLike[str] | RemotePath | None = None,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float | None = None,
    gpus_per_worker: float = 0.0,
    **colorizer_kwargs: Any,
) -> BatchReport:
    """Colorize every input image into ``output`` on Ray; see the module docstring.

    Takes the options of :func:`pixcolor.batch.colorize_files` (the colorizer is described
    by ``model``, ``device``, ``precision`` and ``colorizer_kwargs`` instead of passed,
    since each worker builds its own) and these:

    Args:
        inputs: Files, folders and glob patterns: local paths (on a cluster, on a file
            system every node mounts at the same path) or fsspec URIs (``s3://...``).
        output: Output folder, local or a URI.
        model: Model directory, preset name or Hub repo id (``None``: the bundled model),
            read once on the driver.
        device: Each worker's device (default ``"cuda"`` with ``gpus_per_worker``, else
            ``"cpu"``).
        precision: See :class:`~pixcolor.Colorizer`.
        recursive: As :func:`pixcolor.batch.colorize_files`.
        overwrite: As :func:`pixcolor.batch.colorize_files`.
        render_size: As :func:`pixcolor.batch.colorize_files`.
        saturation: As :func:`pixcolor.batch.colorize_files`.
        batch_size: Images per network forward, and per Ray batch.
        progress: Show a tqdm bar on the driver.
        report_path: As :func:`pixcolor.batch.colorize_files`.
        address: The Ray cluster to join (``"auto"``, ``"ray://head:10001"``, ...);
            ``None`` joins the instance this process already runs, else the one
            ``RAY_ADDRESS`` names, else starts a local one sized to this machine (and stops
            it at the end).
        workers: Actors, each holding a model (default: as many as the cluster's CPUs or
            GPUs allow, at the sizes below).
        cpus_per_worker: CPUs each actor reserves; also its number of torch threads
            (default 1).
        gpus_per_worker: GPUs each actor reserves (0: CPU only; 0.25 puts four actors on a
            GPU, which keeps it busy while each decodes and encodes its photos).
        **colorizer_kwargs: Other :class:`~pixcolor.Colorizer` arguments.

    Returns:
        A :class:`~pixcolor.batch.BatchReport`; the files not done when the job stopped are
        in ``failed`` with a reason that starts with ``"not done"``.

    Raises:
        ImportError: If Ray Data is not installed.
        ValueError: If an option is invalid, an input is a video (videos are colorized
            by :func:`pixcolor.batch.colorize_files`), or the cluster has no GPU for
            ``gpus_per_worker``.
        FileNotFoundError: If an input or the model does not exist.
    """
    ray = _import_ray()
    _check_options(batch_size, workers, cpus_per_worker, gpus_per_worker)
    if device is not None:  # the workers' machines may have devices this one lacks
        parse_device(device, check_available=False)
    weights = _read_weights(model, colorizer_kwargs)
    report = BatchReport()
    with ReportLog(report_path) as log:
        todo = _plan_pending(inputs, output, recursive, overwrite, report, log)
        videos = [str(src) for src, _ in todo if _is_video(src)]
        if videos:
            raise ValueError(
                f"the Ray engine colorizes photos; {videos[0]!r} is a video "
                f"({len(videos)} in the inputs): colorize videos with the local engine"
            )
        if not todo:
            return report
        worker_options: dict[str, Any] = {
            "device": device or ("cuda" if gpus_per_worker else "cpu"),
            "precision": precision,
            "colorizer_kwargs": colorizer_kwargs,
            "threads": max(1, int(cpus_per_worker or 1)),
            "overwrite": overwrite,
            "render_size": render_size,
            "saturation": saturation,
        }
        with _ray_session(ray, address):
            # In the object store once (the driver holds the reference for the whole job,
            # so restarted actors find it), not pickled into every actor's constructor.
            worker_options["weights"] = ray.put(weights)
            workers, cpus = _pool_size(ray, workers, cpus_per_worker, gpus_per_worker)
            logger.info("colorizing %d photos on %d Ray workers", len(todo), workers)
            results = _run(ray, todo, worker_options, batch_size, workers, cpus, gpus_per_worker)
            _collect(results, todo, report, log, progress)
        _storage.remove_temporaries(dst for _, dst in todo)
    return report


class _ColorizeWorker:
    """One actor of the pool: builds its Colorizer once, then colorizes batches of paths."""

    def __init__(self, options: dict[str, Any]) -> None:
        import safetensors.torch
        import torch

        from pixcolor.colorizer import Colorizer
        from pixcolor.models import UNetGenerator

        torch.set_num_threads(options["threads"])
        config, blob = _fetch(options["weights"])
        generator = UNetGenerator.from_config(config)
        generator.load_state_dict(safetensors.torch.load(blob), strict=True)
        self.colorizer = Colorizer(
            generator, options["device"], options["precision"], **options["colorizer_kwargs"]
        )
        self.options = options

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        pairs = [
            (_storage.location(src), _storage.location(dst))
            for src, dst in zip(batch["input"].tolist(), batch["output"].tolist(), strict=True)
        ]
        status = ["written"] * len(pairs)
        reason = [""] * len(pairs)
        todo = []
        for index, (_, dst) in enumerate(pairs):
            # The driver found no output here: one now is the work of an earlier attempt of
            # this batch, which Ray runs again after losing its actor.
            if not self.options["overwrite"] and _storage.output_exists(dst):
                reason[index] = _RETRIED
            else:
                todo.append(index)
        errors = colorize_batch(
            self.colorizer, [pairs[i] for i in todo], overwrite=self.options["overwrite"],
            render_size=self.options["render_size"], saturation=self.options["saturation"],
        )  # fmt: skip
        for index, error in zip(todo, errors, strict=True):
            if error is not None:
                status[index], reason[index] = "failed", error
        return {"index": batch["index"], "status": np.array(status), "reason": np.array(reason)}


def _run(
    ray: Any,
    todo: list[tuple[Location, Location]],
    worker_options: dict[str, Any],
    batch_size: int,
    workers: int,
    cpus: float,
    gpus: float,
) -> Iterator[tuple[int, str, str]]:
    """Run the Ray Data job; yield ``(index into todo, status, reason)`` as results arrive."""
    # About one network batch per block (a block is a task, and what is run again when a
    # worker is lost), in plan order; more per block past _MAX_BLOCKS batches.
    rows = [
        {"index": index, "input": _portable(src), "output": _portable(dst)}
        for index, (src, dst) in enumerate(todo)
    ]
    blocks = min(math.ceil(len(rows) / batch_size), _MAX_BLOCKS)
    workers = min(workers, blocks)  # an actor without a block would only load a model
    with _quiet_ray_data(ray):
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            _ColorizeWorker,
            fn_constructor_args=(worker_options,),
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(
                size=workers, max_tasks_in_flight_per_actor=1 + _QUEUED_PER_WORKER
            ),
            num_cpus=cpus,
            num_gpus=gpus or None,
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            columns = (batch["index"].tolist(), batch["status"].tolist(), batch["reason"].tolist())
            yield from zip(*columns, strict=True)


@contextlib.contextmanager
def _quiet_ray_data(ray: Any) -> Iterator[None]:
    """Ray Data settings for this job, put back afterwards: no progress bars or info logs
    of its own (the driver shows one bar, in photos), and a batch lost on every attempt is
    reported as not done instead of failing the whole job."""
    settings = {"enable_progress_bars": False, "max_errored_blocks": -1}
    context = ray.data.DataContext.get_current()
    saved = {name: getattr(context, name) for name in settings}
    loggers = {logging.getLogger("ray.data"): logging.WARNING,
               logging.getLogger("ray.data._internal.progress"): logging.ERROR}  # fmt: skip
    levels = {log: log.level for log in loggers}
    for name, value in settings.items():
        setattr(context, name, value)
    for log, level in loggers.items():
        log.setLevel(level)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(context, name, value)
        for log, level in levels.items():
            log.setLevel(level)


def _collect(
    results: Iterator[tuple[int, str, str]],
    todo: list[tuple[Location, Location]],
    report: BatchReport,
    log: ReportLog,
    progress: bool,
) -> None:
    """Record each result once; then every file without one as not done."""
    from tqdm.auto import tqdm

    done = [False] * len(todo)
    stopped: str | None = None
    bar = tqdm(total=len(todo), desc="colorize", unit="image", disable=not progress,
               dynamic_ncols=True)  # fmt: skip
    try:
        for index, status, reason in results:
            if done[index]:  # Ray delivers a batch's results once; never count one twice
                logger.warning("ignoring a second result for %s", todo[index][0])
                continue
            done[index] = True
            src, dst = todo[index]
            _record(report, log, src, dst, status, reason or None)
            bar.update(1)
    except KeyboardInterrupt:
        stopped = "interrupted"
        raise
    except Exception as err:  # the job itself failed: say which files are left
        stopped = f"the job stopped: {type(err).__name__}: {err}"
        logger.error("Ray job failed: %s", err)
    finally:
        bar.close()
        why = f"not done: {stopped}" if stopped else "not done: its batch failed on every attempt"
        for index in (i for i, finished in enumerate(done) if not finished):
            _record(report, log, *todo[index], "failed", why)


def _record(
    report: BatchReport, log: ReportLog, src: Location, dst: Location, status: str,
    reason: str | None,
) -> None:  # fmt: skip
    if status == "written":
        report.written.append(dst)
    else:
        report.failed[src] = reason or "unknown error"
    log.write(src, dst, status, reason)


def _pool_size(
    ray: Any, workers: int | None, cpus_per_worker: float | None, gpus_per_worker: float
) -> tuple[int, float]:
    """``(workers, CPUs each)``, from the cluster's resources where not given."""
    resources = ray.cluster_resources()
    cpus = float(cpus_per_worker or 1)
    if workers is not None:
        return workers, cpus
    if gpus_per_worker:
        gpus = float(resources.get("GPU", 0))
        if gpus < gpus_per_worker:
            raise ValueError(
                f"gpus_per_worker={gpus_per_worker} but the Ray cluster has {gpus:g} GPUs; "
                "run on GPU nodes, pass workers= for an autoscaling cluster, or drop "
                "--gpus-per-worker to run on CPUs"
            )
        return max(1, int(gpus / gpus_per_worker)), cpus
    return max(1, int(float(resources.get("CPU", 1)) / cpus)), cpus


@contextlib.contextmanager
def _ray_session(ray: Any, address: str | None) -> Iterator[None]:
    """Join the running Ray instance or ``address``, or start a local one; a Ray started
    here is stopped on the way out."""
    if ray.is_initialized():
        yield
        return
    ray.init(
        address=address, include_dashboard=False, logging_level=logging.WARNING,
        log_to_driver=True,
    )  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()


def _read_weights(
    model: str | os.PathLike[str] | None, colorizer_kwargs: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    """The generator's config and safetensors bytes, read here once: workers need no copy
    of the model, and a missing model fails before any worker starts."""
    import safetensors.torch

    from pixcolor.models import UNetGenerator
    from pixcolor.presets import BUNDLED

    hub_keys = ("revision", "subfolder", "cache_dir", "local_files_only", "token")
    hub_kwargs = {k: colorizer_kwargs.pop(k) for k in hub_keys if k in colorizer_kwargs}
    generator = UNetGenerator.from_pretrained(BUNDLED if model is None else model, **hub_kwargs)
    state = {k: v.detach().contiguous().cpu() for k, v in generator.state_dict().items()}
    return generator.config_dict(), safetensors.torch.save(state)


def _check_options(
    batch_size: int,
    workers: int | None,
    cpus_per_worker: float | None,
    gpus_per_worker: float,
) -> None:
    checks = [
        ("batch_size", batch_size, isinstance(batch_size, int) and batch_size > 0, "an integer >= 1"),
        ("workers", workers, workers is None or (isinstance(workers, int) and workers > 0),
         "an integer >= 1"),
        ("cpus_per_worker", cpus_per_worker, cpus_per_worker is None or cpus_per_worker > 0,
         "a number > 0"),
        ("gpus_per_worker", gpus_per_worker, gpus_per_worker >= 0, "a number >= 0"),
    ]  # fmt: skip
    for name, value, ok, accepted in checks:
        if not ok or isinstance(value, bool):
            raise ValueError(f"{name} must be {accepted}, got {value!r}")


def _fetch(weights: Any) -> tuple[dict[str, Any], bytes]:
    """The ``(config, safetensors bytes)`` the driver put in Ray's object store."""
    if isinstance(weights, tuple):
        return weights
    import ray

    return ray.get(weights)


def _portable(path: Location) -> str:
    """A path as workers read it: local paths absolute (workers may run elsewhere)."""
    return str(path.absolute()) if isinstance(path, Path) else str(path)


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ImportError(_INSTALL) from err
    return ray

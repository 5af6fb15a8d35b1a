"""Colorize archives of millions of photos on a Ray cluster: ``pixcolor colorize --engine ray``.

:func:`colorize_files` does what :func:`pixcolor.batch.colorize_files` does (the same plan,
the same skipping of existing outputs, the same per-batch step, so the same files, byte for
byte where the network runs the same arithmetic: in fp32 that needs the same number of torch
threads, ``cpus_per_worker`` against the local engine's; see docs/ray.rst) on
`Ray Data <https://docs.ray.io/en/latest/data/data.html>`_, which spreads the work over
every machine of a cluster and survives lost workers:

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
import importlib.util
import logging
import math
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pixcolor import _storage
from pixcolor._devices import parse_device
from pixcolor._report import ReportLog
from pixcolor._signals import term_as_interrupt
from pixcolor._storage import Location, RemotePath
from pixcolor.batch import BatchReport, _is_video, _plan_pending, colorize_batch
from pixcolor.errors import ClusterError

__all__ = ["colorize_files"]

logger = logging.getLogger(__name__)

# Blocks of the input dataset at most (a block is a unit of scheduling and of retry):
# beyond this many batches a block holds several, so millions of photos stay cheap to plan.
_MAX_BLOCKS = 20_000
# Batches queued at each actor beyond the one it runs: hides the scheduling round trip.
_QUEUED_PER_WORKER = 2
_RETRIED = "written by an earlier attempt of its batch (a worker was lost)"
_INSTALL = "--engine ray needs Ray Data: pip install 'pixcolor[ray]'"
_HUB_KEYS = ("revision", "subfolder", "cache_dir", "local_files_only", "token")
# Seconds to wait for a TCP connection to a cluster's address before saying it is down.
_CONNECT_TIMEOUT = 5.0
_CLIENT_PORT = 10001


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
        address: The Ray cluster to join (``"auto"``, ``"HOST:6379"``,
            ``"ray://HOST:10001"`` through Ray Client);
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
        ImportError: If Ray Data is not installed (or ``ray[client]`` for a ``ray://``
            address).
        ValueError: If an option is invalid (the colorizer's options with the errors of
            :class:`~pixcolor.Colorizer`, before Ray starts; the device's availability
            where the Ray instance starts here), an input is a video (videos are colorized
            by :func:`pixcolor.batch.colorize_files`), or the cluster has no GPU for
            ``gpus_per_worker`` or a CUDA ``device``.
        ClusterError: If ``address`` (or ``RAY_ADDRESS``) is ``"auto"`` and no Ray cluster
            runs on this machine, or nothing answers at it within a few seconds.
        FileNotFoundError: If an input or the model does not exist.
    """
    ray = _import_ray()
    _check_options(batch_size, workers, cpus_per_worker, gpus_per_worker)
    # The workers' Colorizer options, with the local engine's errors, before Ray starts;
    # the device itself only where the workers run on this machine (a Ray started here).
    starts_here = not ray.is_initialized() and not (address or os.environ.get("RAY_ADDRESS"))
    _check_colorizer_options(device, precision, colorizer_kwargs, check_available=starts_here)
    if not ray.is_initialized():
        _check_address(address)  # before the model is read and the inputs listed
    device = device or ("cuda" if gpus_per_worker else "cpu")
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
            "device": device,
            "precision": precision,
            "colorizer_kwargs": colorizer_kwargs,
            "threads": max(1, int(cpus_per_worker or 1)),
            "overwrite": overwrite,
            "render_size": render_size,
            "saturation": saturation,
        }
        done = [False] * len(todo)
        stopped = "its batch failed on every attempt"
        try:
            with _ray_session(ray, address), term_as_interrupt():
                if starts_here or workers is None:  # else an autoscaler may add GPUs
                    _check_cluster_gpus(ray, device, gpus_per_worker)
                # In the object store once (the driver holds the reference for the whole
                # job, so restarted actors find it), not pickled into every actor's
                # constructor.
                worker_options["weights"] = ray.put(weights)
                workers, cpus = _pool_size(ray, workers, cpus_per_worker, gpus_per_worker)
                logger.info("colorizing %d photos on %d Ray workers", len(todo), workers)
                results = _run(
                    ray, todo, worker_options, batch_size, workers, cpus, gpus_per_worker
                )
                stopped = _collect(results, todo, done, report, log, progress) or stopped
        except KeyboardInterrupt:
            stopped = "interrupted"
            raise
        finally:
            # After the session: no worker writes any more, so what exists is final.
            _record_rest(todo, done, stopped, overwrite, report, log)
            _storage.remove_temporaries(dst for _, dst in todo)
    return report


class _ColorizeWorker:
    """One actor of the pool: builds its Colorizer once, then colorizes batches of paths."""

    def __init__(self, options: dict[str, Any]) -> None:
        import safetensors.torch
        import torch

        from pixcolor.colorizer import Colorizer
        from pixcolor.models.registry import GENERATORS

        torch.set_num_threads(options["threads"])
        config, blob = _fetch(options["weights"])
        generator = GENERATORS[config["_class_name"]].from_config(config)
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
    done: list[bool],
    report: BatchReport,
    log: ReportLog,
    progress: bool,
) -> str | None:
    """Record each result once, marking it in ``done``; returns why the job stopped
    early, if it did (a KeyboardInterrupt goes through)."""
    from tqdm.auto import tqdm

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
    except Exception as err:  # the job itself failed: say which files are left
        logger.error("Ray job failed: %s", err)
        return f"the job stopped: {type(err).__name__}: {err}"
    finally:
        bar.close()
    return None


def _record_rest(
    todo: list[tuple[Location, Location]],
    done: list[bool],
    stopped: str,
    overwrite: bool,
    report: BatchReport,
    log: ReportLog,
) -> None:
    """Record every file without a result: as written where its output exists now (a
    worker finished it, its result had not reached the driver; the driver found no output
    when it planned the job, and outputs appear only complete), else as not done. Checked
    for local outputs only (one stat each); with ``overwrite`` an output may be the old
    one, so none is counted."""
    for index in (i for i, finished in enumerate(done) if not finished):
        src, dst = todo[index]
        if not overwrite and isinstance(dst, Path) and _storage.output_exists(dst):
            _record(report, log, src, dst, "written", None)
        else:
            _record(report, log, src, dst, "failed", f"not done: {stopped}")


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
                f"gpus_per_worker={gpus_per_worker:g} (--gpus-per-worker) but the Ray cluster "
                f"has {gpus:g} GPUs; run on GPU nodes, give the number of workers (workers=, "
                "--workers) for an autoscaling cluster, or leave gpus_per_worker at 0 to run "
                "on CPUs"
            )
        return max(1, int(gpus / gpus_per_worker)), cpus
    return max(1, int(float(resources.get("CPU", 1)) / cpus)), cpus


@contextlib.contextmanager
def _ray_session(ray: Any, address: str | None) -> Iterator[None]:
    """Join the running Ray instance or ``address``, or start a local one; a Ray started
    here is stopped on the way out.

    Raises:
        ClusterError: If ``"auto"`` finds no running Ray instance, or nothing answers at
            the address (within a few seconds: Ray itself would retry for ever).
    """
    if ray.is_initialized():
        yield
        return
    try:
        ray.init(
            address=address, include_dashboard=False, logging_level=logging.WARNING,
            log_to_driver=True,
        )  # fmt: skip
    except ConnectionError as err:  # Ray's own message names its command's flags
        raise ClusterError(f"{_named(address)}: cannot join the Ray cluster: {err}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_address(address: str | None) -> None:
    """Fail at once, naming the address, where :func:`ray.init` would fail with a message
    about its own command's flags (``"auto"`` without a running cluster) or retry for
    ever (nothing answers at ``HOST:PORT``).

    Raises:
        ClusterError: If ``"auto"`` finds no running Ray instance, or nothing accepts a
            connection at the address within a few seconds.
        ValueError: If the address is neither ``auto``, ``HOST:PORT`` nor ``ray://...``.
        ImportError: For a Ray Client address without ``ray[client]``.
    """
    given = address or os.environ.get("RAY_ADDRESS") or None
    if given in (None, "local"):
        return
    if given == "auto":
        try:  # how ray.init finds it (private: any other failure is left to ray.init)
            from ray._private.services import canonicalize_bootstrap_address

            canonicalize_bootstrap_address("auto")
        except ConnectionError:
            raise ClusterError(
                f"{_named(address)}: no running Ray cluster found on this machine; start one "
                "(ray start --head), give the head node's HOST:PORT, or give no address "
                "to start a Ray instance for this run"
            ) from None
        except Exception:
            logger.debug("could not look up the running Ray cluster", exc_info=True)
        return
    _probe_address(given, _named(address))


def _named(address: str | None) -> str:
    """How errors name the address: the given one, else RAY_ADDRESS's."""
    if address:
        return f"Ray address {address!r}"
    return f"Ray address {os.environ.get('RAY_ADDRESS')!r} (from RAY_ADDRESS)"


def _probe_address(address: str, named: str) -> None:
    """Raise ClusterError unless something accepts a TCP connection at ``address``
    (``HOST:PORT``, or ``ray://HOST[:PORT]`` for Ray Client)."""
    client = address.startswith("ray://")
    rest = address.removeprefix("ray://").rstrip("/")
    host, colon, port_text = rest.rpartition(":")
    if not colon or "]" in port_text:  # no port (an IPv6 host's colons are in brackets)
        host, port_text = rest, str(_CLIENT_PORT) if client else ""
    host = host.strip("[]")
    if not host or not port_text.isdigit():
        raise ValueError(
            f"{named} is not an address; use auto, HOST:PORT (the head node's GCS port, "
            "6379 by default) or ray://HOST:PORT (Ray Client, 10001 by default)"
        )
    if client and importlib.util.find_spec("grpc") is None:
        raise ImportError(
            f"{named} is a Ray Client address, which needs ray[client]: "
            "pip install 'pixcolor[ray]' (or pip install 'ray[client]')"
        )
    try:
        with socket.create_connection((host, int(port_text)), timeout=_CONNECT_TIMEOUT):
            pass
    except OSError as err:
        raise ClusterError(
            f"{named}: nothing answers at {host}:{port_text} ({err.strerror or err}); "
            "is the Ray head node running there, and is the port open to this machine?"
        ) from None


def _read_weights(
    model: str | os.PathLike[str] | None, colorizer_kwargs: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    """The generator's config (naming its class) and safetensors bytes, read here once:
    workers need no copy of the model, and a missing model fails before any worker starts.
    Any generator class a saved model may hold, as :meth:`pixcolor.Colorizer.from_pretrained`."""
    import safetensors.torch

    from pixcolor.models.registry import load_generator
    from pixcolor.presets import BUNDLED

    hub_kwargs = {k: colorizer_kwargs.pop(k) for k in _HUB_KEYS if k in colorizer_kwargs}
    generator = load_generator(BUNDLED if model is None else model, **hub_kwargs)
    state = {k: v.detach().contiguous().cpu() for k, v in generator.state_dict().items()}
    return generator.config_dict(), safetensors.torch.save(state)


def _check_colorizer_options(
    device: str | None, precision: str, colorizer_kwargs: dict[str, Any], check_available: bool
) -> None:
    """What each worker's Colorizer would refuse, refused here with the same errors."""
    from pixcolor._inference import check_options

    accepted = {"backend", "memory_format", "calibration", *_HUB_KEYS}
    unknown = sorted(set(colorizer_kwargs) - accepted)
    if unknown:
        raise TypeError(
            f"unknown Colorizer option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(sorted(accepted))}"
        )
    dev = parse_device(device or "cpu", check_available=check_available)
    check_options(
        dev, precision, colorizer_kwargs.get("memory_format", "auto"),
        colorizer_kwargs.get("backend", "torch"),
    )  # fmt: skip


def _check_cluster_gpus(ray: Any, device: str, gpus_per_worker: float) -> None:
    """A CUDA device needs GPUs in the cluster (checked once joined, before any worker
    starts: actors that ask for GPUs the cluster lacks would wait for ever)."""
    if parse_device(device, check_available=False).type != "cuda":
        return
    if float(ray.cluster_resources().get("GPU", 0)):
        return
    if gpus_per_worker:
        raise ValueError(
            f"gpus_per_worker={gpus_per_worker:g} (--gpus-per-worker) but the Ray cluster "
            "has no GPUs; run on GPU nodes, or leave gpus_per_worker at 0 to run on CPUs"
        )
    raise ValueError(
        f"device {device!r} is not available on the Ray cluster: it has no GPUs; use "
        "'cpu', or run on GPU nodes with gpus_per_worker (--gpus-per-worker)"
    )


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

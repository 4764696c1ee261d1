"""Batch scoring: a pandas helper for notebooks, and Ray Data for folders too big for one machine.

Both score through the same :class:`~aiornot.detector.Detector` as ``aiornot scan`` and the web
service, so an image gets the same score whichever way it is scored.

Ray Data pipeline (``aiornot scan --engine ray``, or :func:`scan_with_ray`)::

    paths (driver) ──► from_arrow(blocks of paths) ──► map_batches(_ScoreBatch actors) ──► rows
       rows ──► iter_batches (driver, streaming) ──► JSON lines, flushed per batch ──► output

Why paths and not ``read_binary_files``: the CLI already holds the path list (it has to, to skip
paths already in the output), and the ``path`` of every line must be exactly the string the local
engine writes, or resuming breaks. ``read_binary_files`` rewrites paths, fails the whole job on one
unreadable file and reads a file before the decoder's size guard can refuse it. So the workers
read their files themselves, through the same ``read_bytes``/``open_image`` as everywhere else;
image bytes never pass through the object store, only paths (~100 bytes each) and result rows.
On a cluster the images and the model must therefore sit on storage every node can read.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
import sys
import warnings
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterator, Sequence, TextIO

from aiornot.io.jsonl import ScanCounts, json_line, open_jsonl_output
from aiornot.detector import Detector, ModelNotFoundError, model_directory
from aiornot.predict import PredictOptions
from aiornot.io.result_rows import ROW_FIELDS, result_to_row, row_schema, row_to_record  # noqa: F401 (ROW_FIELDS: also read as batch.ROW_FIELDS)
from aiornot.contract.result import Result
from aiornot.model.tflite_runtime import usable_cpus

if TYPE_CHECKING:  # heavy or optional imports, only for annotations
    import pandas as pd
    import pyarrow as pa
    import ray.data

#: How long to wait for a cluster's port before saying it is unreachable (Ray itself can hang for minutes).
CONNECT_TIMEOUT_S = 5.0
#: Tries to start a local Ray instance (see :func:`_start_local`).
START_ATTEMPTS = 2
AUTH_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
class BatchError(RuntimeError):
    """The batch job could not run (Ray missing, cluster unreachable, workers failed); the message says why."""


def check_options(*, id_photo: bool, face_score: bool) -> None:
    """Raise :class:`ValueError` now, on the driver, for options every worker would refuse (``face_score`` alone)."""
    PredictOptions(id_photo=id_photo, face_score=face_score)


# -------------------------------------------------------------------------------- the worker
class _ScoreBatch:
    """Ray Data callable class: loads the Detector once per actor, then scores batches of paths."""

    def __init__(self, model_dir: str, id_photo: bool, batch_size: int, base_dir: str, cpus: float = 1.0,
                 face_score: bool = False) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        _limit_threads(cpus)
        self.detector = Detector.load(model_dir, threads=max(1, int(cpus)))  # the CPUs Ray gave this actor
        self.id_photo, self.face_score, self.batch_size, self.base_dir = id_photo, face_score, batch_size, Path(base_dir)
        self.schema = row_schema()

    def __call__(self, batch: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        labels = [os.fsdecode(label) for label in batch.column("path").to_pylist()]
        # Relative paths are resolved against the driver's folder (a worker's may differ), but
        # each line keeps the path as given: it is the resume key the local engine writes too.
        files = [label if os.path.isabs(label) else str(self.base_dir / label) for label in labels]
        rows = [result_to_row(result) for result in self.score(labels, files)]
        return pa.Table.from_pylist(rows, schema=self.schema)

    def score(self, labels: list[str], sources: Sequence[str | bytes]) -> list[Result]:
        """One Result per source (a path or an image's bytes), labelled as given, in order.

        No exception escapes: one failure must not fail the job.
        """
        try:
            return self._predict(labels, sources)
        except Exception:  # noqa: BLE001 — find the one image that broke the batch, score the rest
            return [self._predict_one(label, source) for label, source in zip(labels, sources)]

    def _predict(self, labels: list[str], sources: Sequence[str | bytes]) -> list[Result]:
        return list(self.detector.predict_many(sources, labels=labels, batch_size=self.batch_size, id_photo=self.id_photo,
                                               face_score=self.face_score))

    def _predict_one(self, label: str, source: str | bytes) -> Result:
        try:
            return self._predict([label], [source])[0]
        except Exception as error:  # noqa: BLE001 — reported in the line, like a decode error
            return Result(path=label, model=self.detector.name, error_code="scoring_failed",
                          error=f"could not score this image ({type(error).__name__}: {error})")


class _ScoreImages(_ScoreBatch):
    """Ray Data callable class for Parquet rows (``id``, ``image`` struct, ``label``): bytes in, scored rows out.

    The same rows as :class:`_ScoreBatch` (the ``path`` field holds the row's ``id``, the row key),
    plus ``id`` and ``label`` columns (:data:`~aiornot.io.stream.UNLABELLED` where the data has none).
    The bytes are decoded by the Detector through :func:`aiornot.io.decode.open_image`; a missing or
    unreadable image gets a row with ``error`` and ``error_code``, like a bad file.
    """

    def __call__(self, batch: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        from aiornot.io.stream import UNLABELLED

        ids, sources = image_sources(batch)
        rows = [result_to_row(result) for result in self.score(ids, sources)]
        labels = batch.column("label").to_pylist() if "label" in batch.column_names else [None] * len(ids)
        table = pa.Table.from_pylist(rows, schema=self.schema)
        table = table.append_column("id", pa.array(ids, pa.string()))
        return table.append_column("label", pa.array([UNLABELLED if v is None else int(v) for v in labels], pa.int64()))


def image_sources(batch: "pa.Table") -> tuple[list[str], list[bytes | str]]:
    """Ids and decoder inputs of a batch with an ``image`` struct column (Parquet) or a ``path`` column.

    A Parquet row's input is its image's bytes (``b""`` when missing: the decoder then reports it
    as empty); its id is the ``id`` column, else the image's stored ``path``.
    """
    names = batch.column_names
    if "image" in names:
        images = batch.column("image").to_pylist()
        sources = [(value or {}).get("bytes") or b"" if isinstance(value, dict) else (value or b"") for value in images]
        fallback = [(value or {}).get("path") if isinstance(value, dict) else None for value in images]
    else:
        sources = [os.fsdecode(p) for p in batch.column("path").to_pylist()]
        fallback = list(sources)
    ids = batch.column("id").to_pylist() if "id" in names else fallback
    return [str(i) for i in ids], sources


def _limit_threads(cpus: float) -> None:
    """Keep TensorFlow to the CPUs Ray gave this actor, so N actors on N cores do not fight."""
    try:
        import tensorflow as tf

        threads = max(1, int(cpus))
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except (ImportError, RuntimeError):  # another Keras backend, or TF already initialised
        pass


# ------------------------------------------------------------------------------ the pipeline
def score_dataset(
    dataset: "ray.data.Dataset",
    *,
    model_dir: str | Path | None = None,
    id_photo: bool = False,
    face_score: bool = False,
    batch_size: int = 32,
    num_workers: int = 1,
    cpus_per_worker: float = 1.0,
    source: str = "path",
) -> "ray.data.Dataset":
    """Score a Ray Dataset lazily, one row out per row in (see :data:`ROW_FIELDS`).

    ``source="path"``: the dataset has a ``path`` column of image files. ``source="image"``:
    Parquet rows in the Hugging Face layout (``id``, an ``image`` struct with ``bytes``, optionally
    ``label``), as :func:`parquet_dataset` reads them; rows then also carry ``id`` and ``label``.
    The building block of :func:`scan_with_ray`, for notebooks on a cluster, e.g.
    ``score_dataset(ds).write_parquet("s3://…")``. ``num_workers`` actors each load the model once.
    ``id_photo``, ``face_score``: as for :meth:`~aiornot.detector.Detector.predict_many` (``face_score``
    without ``id_photo`` raises :class:`ValueError` here, before any worker starts).
    """
    workers = {"path": _ScoreBatch, "image": _ScoreImages}
    if source not in workers:
        raise ValueError(f"source must be 'path' or 'image', not {source!r}")
    check_options(id_photo=id_photo, face_score=face_score)
    # max_restarts (below) is still accepted only as a "ray_remote_args" keyword, which Ray 2.60
    # marks as deprecated; the pin is 2.60, so that one warning is hidden here (revisit at 2.64).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        return _map_batches(dataset, workers[source], model_dir=model_dir, id_photo=id_photo, face_score=face_score,
                            batch_size=batch_size, num_workers=num_workers, cpus_per_worker=cpus_per_worker)


def _map_batches(dataset: "ray.data.Dataset", worker: type, *, model_dir: str | Path | None, id_photo: bool,
                 face_score: bool, batch_size: int, num_workers: int, cpus_per_worker: float) -> "ray.data.Dataset":
    import ray.data

    return dataset.map_batches(
        worker,
        fn_constructor_kwargs=dict(model_dir=str(model_directory(model_dir)), id_photo=id_photo, face_score=face_score,
                                   batch_size=batch_size, base_dir=os.getcwd(), cpus=cpus_per_worker),
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=num_workers),
        num_cpus=cpus_per_worker,
        udf_modifying_row_count=False,  # one row out per row in: lets Ray Data plan accordingly
        # No actor restarts: Ray cannot honour them for an actor whose constructor arguments sit in
        # the object store (ray-project/ray#53727) and says so with a core_worker.cc ERROR line on
        # every run. A dead worker fails the job instead; the scan's re-run resumes where it stopped.
        max_restarts=0,
    )


def paths_dataset(paths: Sequence[str | Path], *, num_workers: int, batch_size: int) -> "ray.data.Dataset":
    """A Dataset of paths cut into enough blocks to keep every worker busy, not so many as to cost overhead."""
    import pyarrow as pa
    import ray.data

    labels = [os.fsencode(p) for p in paths]  # bytes: a non-UTF-8 file name survives (see row_schema)
    per_block = max(1, min(batch_size * 8, math.ceil(len(labels) / (num_workers * 4))))
    blocks = [pa.table({"path": pa.array(labels[i : i + per_block], pa.binary())}) for i in range(0, len(labels), per_block)]
    return ray.data.from_arrow(blocks)


def scan_with_ray(
    paths: Sequence[str | Path],
    *,
    output: Path | None,
    sink: TextIO | None = None,
    model_dir: str | Path | None = None,
    id_photo: bool = False,
    face_score: bool = False,
    batch_size: int = 32,
    num_workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> ScanCounts:
    """Score ``paths`` on Ray Data and append JSON lines to ``sink``, else ``output`` (stdout if None).

    ``aiornot scan`` passes the ``sink`` it opened (and locked) before anything else started.

    Lines are the same as ``aiornot scan`` writes locally (order may differ). ``address``: None
    uses a running Ray (``ray.init`` already called), else ``RAY_ADDRESS``, else starts a private
    local instance; ``"auto"``, ``host:port`` or ``ray://host:port`` connect to a cluster. Whatever
    this function starts or connects to, it shuts down. Returns the :class:`~aiornot.io.jsonl.ScanCounts`.
    Raises :class:`BatchError` or :class:`ModelNotFoundError` with a clear message, and
    :class:`ValueError` for ``face_score`` without ``id_photo`` (before Ray starts).
    """
    check_options(id_photo=id_photo, face_score=face_score)
    if not paths:  # nothing to do (e.g. a resumed scan that is complete): do not start Ray for it
        return ScanCounts()
    model_path = model_directory(model_dir)
    return _score_on_ray(lambda workers: paths_dataset(paths, num_workers=workers, batch_size=batch_size), total=len(paths),
                         output=output, sink=sink, model_path=model_path, id_photo=id_photo, face_score=face_score,
                         batch_size=batch_size, num_workers=num_workers, address=address, progress=progress)


def _score_on_ray(make_input: Callable[[int], "ray.data.Dataset"], *, total: int, output: Path | None, sink: TextIO | None,
                  model_path: Path, id_photo: bool, face_score: bool, batch_size: int, num_workers: int | None,
                  address: str | None, progress: bool, source: str = "path") -> ScanCounts:
    """Start (or join) Ray, score the dataset ``make_input(workers)`` builds, and stream its JSON lines out."""
    _require_ray()
    with ray_session(address, num_cpus=num_workers), _quiet_ray_data():
        workers = _worker_count(num_workers)
        dataset = score_dataset(make_input(workers), model_dir=model_path, id_photo=id_photo, face_score=face_score,
                                batch_size=batch_size, num_workers=workers, source=source)
        with contextlib.nullcontext(sink) if sink is not None else open_jsonl_output(output) as out:
            return _run(dataset, out, total=total, progress=progress, workers=workers)


def _require_ray() -> None:
    try:
        import ray  # noqa: F401 — an optional dependency
    except ImportError as error:
        raise BatchError("Ray is not installed; install it with: pip install 'aiornot[ray]'") from error


# ------------------------------------------------------------------- Parquet image bytes
#: Columns read from a Parquet dataset in the Hugging Face layout (``label`` only where present).
PARQUET_COLUMNS = ("id", "image", "label")


@dataclass(frozen=True)
class ParquetPlan:
    """What a Parquet scan reads: the shards, their columns, and how many rows are left to do or done."""

    shards: list[Path]
    columns: list[str]
    todo: int
    skipped: int


def plan_parquet(data: str | Path, *, done: Collection[str] = ()) -> ParquetPlan:
    """Check Parquet shards in the Hugging Face layout and count their rows, reading the label table alone.

    Raises :class:`~aiornot.io.reader.DatasetError` for a missing ``image`` or ``id`` column (the id
    is each line's key for resuming) or no rows.
    """
    from aiornot.io.reader import DatasetError, open_table

    table = open_table(data, required=("id",))
    if not table.is_parquet:
        raise DatasetError(f"{data}: not Parquet shards; pass a .parquet file or a folder of them")
    skipped = int(table.labels["id"].isin(list(done)).sum()) if done else 0
    columns = [c for c in PARQUET_COLUMNS if c in table.shared_columns]  # label only where every shard has it
    return ParquetPlan(table.shard_paths, columns, len(table) - skipped, skipped)


def parquet_dataset(data: str | Path | ParquetPlan, *, done: Collection[str] = ()) -> "ray.data.Dataset":
    """The rows of Parquet shards (Hugging Face layout) less the ids in ``done``, for ``score_dataset(source="image")``.

    Only ``id``, ``image`` and (where every shard has it) ``label`` are read, by the workers; rows
    already done are dropped as they are read, before any decoding. Needs a Ray session.
    """
    import ray.data

    plan = data if isinstance(data, ParquetPlan) else plan_parquet(data, done=done)
    dataset = ray.data.read_parquet([str(shard) for shard in plan.shards], columns=plan.columns)
    if done:
        dataset = dataset.map_batches(_without_ids, fn_kwargs=dict(done=sorted(done)), batch_format="pyarrow")
    return dataset


def _without_ids(batch: "pa.Table", done: Sequence[str]) -> "pa.Table":
    import pyarrow as pa
    import pyarrow.compute as pc

    return batch.filter(pc.invert(pc.is_in(batch.column("id").cast(pa.string()), value_set=pa.array(done, pa.string()))))


def scan_parquet_with_ray(
    data: str | Path,
    *,
    output: Path | None,
    sink: TextIO | None = None,
    done: Collection[str] = (),
    model_dir: str | Path | None = None,
    id_photo: bool = False,
    face_score: bool = False,
    batch_size: int = 32,
    num_workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> ScanCounts:
    """Score the images inside Parquet shards (Hugging Face layout) on Ray Data, as JSON lines.

    Like :func:`scan_with_ray`, with each line's ``path`` being the row's ``id``; rows whose id is
    in ``done`` (the ``path`` values of an earlier output) are skipped, so a re-run resumes.
    Returns the :class:`~aiornot.io.jsonl.ScanCounts` (``skipped``: the rows already done). Raises :class:`BatchError`,
    :class:`~aiornot.io.datasets.DatasetError` or :class:`ModelNotFoundError` with a clear message, and
    :class:`ValueError` for ``face_score`` without ``id_photo``.
    """
    check_options(id_photo=id_photo, face_score=face_score)
    model_path = model_directory(model_dir)
    plan = plan_parquet(data, done=done)  # before Ray starts: a wrong column costs no start-up time
    if not plan.todo:
        return ScanCounts(skipped=plan.skipped)
    counts = _score_on_ray(lambda workers: parquet_dataset(plan, done=done), total=plan.todo, output=output, sink=sink,
                                   model_path=model_path, id_photo=id_photo, face_score=face_score, batch_size=batch_size,
                                   num_workers=num_workers, address=address, progress=progress, source="image")
    counts.skipped = plan.skipped
    return counts


def _run(dataset: "ray.data.Dataset", sink: TextIO, *, total: int, progress: bool, workers: int) -> ScanCounts:
    """Stream the rows into JSON lines as they arrive (the driver never holds the whole result)."""
    import ray.exceptions
    from tqdm import tqdm

    counts = ScanCounts()
    with tqdm(total=total, desc=f"scoring (ray, {workers} workers)", unit="img", disable=not progress, file=sys.stderr) as bar:
        try:
            for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                records = [row_to_record(row) for row in table.to_pylist()]
                sink.write("".join(json_line(r) for r in records))
                sink.flush()  # a crash now loses at most the batch in flight; a re-run resumes
                for record in records:
                    counts.add(record)
                bar.update(len(records))
        except ray.exceptions.RayError as error:
            raise BatchError(f"the Ray job failed after {counts.scored + counts.failed} images ({_root_cause(error)}); "
                             "the full traceback is in the workers' logs under the Ray session folder "
                             "(/tmp/ray/session_latest/logs on a local instance); a re-run resumes") from error
    return counts


# ------------------------------------------------------------------------- Ray housekeeping
@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[None]:
    """Use the Ray already initialised, or connect to ``address``/``RAY_ADDRESS``, or start a local one.

    Only what this starts (or connects) is shut down on exit; a caller's own Ray is left alone.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING)  # worker logs stay in /tmp/ray/session_*/logs
    if address is None:
        _start_local(max(usable_cpus(), num_cpus or 0), quiet)  # enough logical CPUs for every requested worker
    else:
        _connect(address, quiet)
    try:
        yield
    finally:
        ray.shutdown()


def _start_local(cpus: int, options: dict[str, Any], attempts: int = START_ATTEMPTS) -> None:
    """Start a private local Ray instance, retrying when its helper processes come up too slowly.

    On a small, busy machine Ray's dashboard agent can miss the raylet's fixed 15 s start-up
    deadline (ray-project/ray#65983); a second try usually succeeds, with the files now cached.
    """
    import psutil  # a dependency of Ray
    import ray

    for attempt in range(1, attempts + 1):
        before = {child.pid for child in psutil.Process().children(recursive=True)}
        try:
            # "local": a private instance even if a `ray start` cluster runs here (that one needs "auto").
            with _quiet_logger(AUTH_NOTICE_LOGGER, logging.ERROR), _loopback_only():  # "token auth is on": fine here
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, ignore_reinit_error=True, **options)
            return
        except Exception as error:  # Ray raises a bare Exception for a start-up timeout
            if "timed out during startup" not in str(error):
                raise
            ray.shutdown()
            _end_new_children(before)  # a failed start leaves its GCS, monitor, … running
            if attempt == attempts:
                raise BatchError(f"Ray could not start a local instance ({attempts} tries): {_first_line(error)} "
                                 "The machine is probably too busy; try again, or start one with `ray start --head` "
                                 "and pass --ray-address auto") from error
            print("warning: Ray did not start in time (busy machine?); trying once more", file=sys.stderr)


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Have a private local Ray instance listen on 127.0.0.1 only, not on every network interface.

    Nothing outside this machine needs to reach it, and the images it scores are personal data.
    Ray picks loopback by itself where it does not support clusters (its
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` switch, read once at import); this sets the same switch
    for the duration of ``ray.init``. Where a Ray version lacks it, Ray's default is kept.
    """
    try:
        from ray._private import ray_constants
    except ImportError:
        yield
        return
    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if saved is None:
        yield
        return
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _end_new_children(before: set[int]) -> None:
    """Terminate the child processes (by pid) that a failed ``ray.init`` started; the rest are left alone."""
    import psutil

    new = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
    for child in new:
        with suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(new, timeout=5)
    for child in alive:
        with suppress(psutil.NoSuchProcess):
            child.kill()


def _connect(address: str, options: dict[str, Any]) -> None:
    """Connect to a cluster, turning Ray's errors (or minutes of silent retrying) into a clear message."""
    import ray

    _check_reachable(address)
    hint = "check the address, or start one with `ray start --head` (use 'auto' for a cluster on this machine)"
    try:
        ray.init(address=address, ignore_reinit_error=True, **options)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as error:
        raise BatchError(f"cannot connect to Ray at {address!r}: {_first_line(error)}; {hint}") from error


def _check_reachable(address: str) -> None:
    """Fail in seconds when a host:port address has nothing listening (Ray would retry for minutes)."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if address in ("auto", "local") or not host or not port.isdigit():
        return  # not host:port: Ray's own check gives the message
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise BatchError(f"cannot reach a Ray cluster at {address!r} ({error.strerror or error}); "
                         "check the address and port (ray:// uses the client port, 10001 by default), "
                         "or start one with `ray start --head`") from error


def _worker_count(requested: int | None) -> int:
    """Actors to start: as asked, else one per CPU; never more than the cluster can place (they would wait forever)."""
    import ray

    available = max(1, int(ray.cluster_resources().get("CPU", 1)))
    if requested and requested > available:
        print(f"warning: {requested} workers asked for, the cluster has {available} CPUs; using {available}", file=sys.stderr)
    return max(1, min(requested or available, available))


@contextmanager
def _quiet_ray_data() -> Iterator[None]:
    """Hide Ray Data's per-operator progress bars and start/stop banners; our one bar says enough.

    The settings are restored afterwards, so a notebook's own Ray Data use is unchanged.
    """
    from ray.data import DataContext

    context = DataContext.get_current()
    settings = dict(enable_progress_bars=False, print_on_execution_start=False, enable_auto_log_stats=False)
    saved = {name: getattr(context, name) for name in settings if hasattr(context, name)}
    for name in saved:
        setattr(context, name, settings[name])
    try:
        # INFO banners of ray.data; and the warning that progress bars are off, which we just did on purpose.
        # The traceback ray.data.exceptions prints for a failed worker is summed up by our BatchError.
        with _quiet_logger("ray.data", logging.WARNING), _quiet_logger("ray.data._internal.progress", logging.ERROR), \
                _quiet_logger("ray.data.exceptions", logging.CRITICAL):
            yield
    finally:
        for name, value in saved.items():
            setattr(context, name, value)


@contextmanager
def _quiet_logger(name: str, level: int) -> Iterator[None]:
    """Raise one logger's level for the duration, then restore it."""
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(max(level, saved))
    try:
        yield
    finally:
        logger.setLevel(saved)


# --------------------------------------------------------------------------------- helpers
def _first_line(error: BaseException) -> str:
    """An exception's first line: Ray's errors carry whole remote tracebacks."""
    text = _ANSI.sub("", str(error)).strip() or type(error).__name__
    return text.splitlines()[0]


def _root_cause(error: BaseException) -> str:
    """The worker's own exception line (e.g. ``ValueError: …``) out of a Ray error's remote traceback."""
    lines = [line for line in _ANSI.sub("", str(error)).strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return last if _EXCEPTION_LINE.match(last) else _first_line(error)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the actor names in its messages
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


# ------------------------------------------------------------------------ local, for notebooks
def score_frame(
    frame: "pd.DataFrame",
    *,
    column: str = "path",
    detector: Detector | None = None,
    model_dir: str | Path | None = None,
    batch_size: int = 32,
    id_photo: bool = False,
    face_score: bool = False,
    progress: bool = False,
) -> "pd.DataFrame":
    """Score the image paths in ``frame[column]`` locally; returns a copy with the result columns added.

    Added: ``score``, ``verdict``, ``pixel_verdict``, ``error``, ``error_code`` and, with ``face_score``
    (which needs ``id_photo``), ``face_score`` — flat columns that filter and plot well; lists and dicts stay out.
    """
    import pandas as pd

    check_options(id_photo=id_photo, face_score=face_score)  # before the model loads
    detector = detector or Detector.load(model_dir)
    results = detector.predict_many(frame[column].astype(str), batch_size=batch_size, id_photo=id_photo,
                                    face_score=face_score, progress=progress, total=len(frame))
    columns = ["score", "verdict", "pixel_verdict", "error", "error_code"] + (["face_score"] if face_score else [])
    scored = pd.DataFrame([{c: getattr(r, c) for c in columns} for r in results], columns=columns, index=frame.index)
    return frame.drop(columns=[c for c in columns if c in frame.columns]).join(scored)

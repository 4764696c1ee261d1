"""`make bench-scale`: does memory stay flat and I/O stay cheap as the dataset grows from 5k to 20k images?

Writes a synthetic dataset in the exact Hugging Face ``competitions/aiornot`` layout (Parquet shards
of ``id``, ``image`` {bytes, path}, ``label``; 512×512 JPEGs of gradients, noise and shapes, the
AI class with up-sampled noise as generators leave it), made in worker processes one row group at a
time. Then, for each size, each stage runs in a **fresh process** so its peak RSS is its own:

    load (every image decoded, streaming) → split (labels only) → the notebooks' prologue and lazy
    views (every image checked, then read once) → one capped epoch of the seed CNN
    → one capped epoch of the forensic CNN → embeddings (CLIP, capped) → scoring of the whole set
    (streaming to Parquet) and, for comparison, the detector on images already in memory.

Results go to ``reports/benchmark_scale.json`` and ``reports/figures/benchmark_scale.png``; the
targets are printed as PASS/FAIL: peak RSS flat from the smallest to the largest size (within 15 %)
and under 4 GB, and streaming scoring at ≥ 80 % of the in-memory throughput.

Usage: ``python benchmarks/bench_scale.py [--sizes 5000 20000] [--train-steps 6] [--embed-cap 48]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout: import this tree's aiornot

TARGET_RSS_GROWTH = 0.15
TARGET_RSS_MB = 4096
TARGET_STREAM_RATIO = 0.80
SHARD_ROWS = 1000
ROW_GROUP_ROWS = 100  # what the Hugging Face `datasets` library writes for image columns
AI_SHARE = 10333 / 18618  # the seed's class ratio
STAGES = ("load", "split", "notebook_views", "train_seed_cnn", "train_forensic", "embed", "score_stream", "score_memory")


# -------------------------------------------------------------------------- the synthetic set
def _noise_bank(size: int, seed: int) -> dict[int, np.ndarray]:
    """Per-class noise fields, made once per worker: camera-like pixel noise, up-sampled 'generator' noise."""
    rng = np.random.default_rng(seed)
    fine = rng.normal(0, 9, (4, size, size, 3)).astype(np.int16)
    coarse = np.repeat(np.repeat(rng.normal(0, 9, (4, size // 2, size // 2, 3)), 2, axis=1), 2, axis=2).astype(np.int16)
    return {0: fine, 1: coarse}


def synthetic_jpeg(index: int, label: int, size: int, bank: dict[int, np.ndarray]) -> bytes:
    """One varied picture: a colour gradient, rolled class noise and a few shapes, as a JPEG (q 70–95)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(index)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    axis = ramp[:, None, None] if rng.random() < 0.5 else ramp[None, :, None]
    base = (start + (end - start) * axis).astype(np.int16)
    noise = np.roll(bank[label][rng.integers(len(bank[label]))], tuple(rng.integers(0, size, 2)), axis=(0, 1))
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 8))):
        left, top = (int(v) for v in rng.integers(0, size, 2))
        width, height = (int(v) for v in rng.integers(size // 16, size // 2, 2))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([left, top, left + width, top + height], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(70, 96)))
    return buffer.getvalue()


def write_shard(args: tuple[Path, int, int, int, int]) -> str:
    """Shard ``number`` of ``total``: ``rows`` images, written one row group at a time (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder, number, total, size, rows = args
    target = folder / f"train-{number:05d}-of-{total:05d}.parquet"
    if target.exists():
        return target.name
    bank = _noise_bank(size, number)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("id", pa.string()), ("image", image_type), ("label", pa.int64())])
    temporary = target.with_suffix(".tmp")
    with pq.ParquetWriter(temporary, schema) as writer:
        for start in range(number * rows, (number + 1) * rows, ROW_GROUP_ROWS):
            indices = range(start, min(start + ROW_GROUP_ROWS, (number + 1) * rows))
            labels = [int(np.random.default_rng((7, i)).random() < AI_SHARE) for i in indices]
            ids = [f"{i:06d}.jpg" for i in indices]
            images = [{"bytes": synthetic_jpeg(i, label, size, bank), "path": name} for i, label, name in zip(indices, labels, ids)]
            writer.write_table(pa.table({"id": ids, "image": pa.array(images, image_type), "label": labels}, schema=schema))
    os.replace(temporary, target)
    return target.name


def shard_rows(sizes: list[int]) -> int:
    """Images per shard: SHARD_ROWS, or fewer so that every size is a whole number of shards."""
    import math

    return math.gcd(SHARD_ROWS, *sizes)


def make_datasets(work: Path, sizes: list[int], image_size: int, processes: int) -> tuple[dict[int, Path], int]:
    """Shards for the largest size (reused if present); each size is a folder linking its first shards.

    Returns the folders and how many shards had to be made (0: all reused from an earlier run).
    """
    from tqdm import tqdm

    rows = shard_rows(sizes)
    shards = work / f"shards-{image_size}-{rows}"
    shards.mkdir(parents=True, exist_ok=True)
    total = -(-max(sizes) // rows)
    jobs = [(shards, number, total, image_size, rows) for number in range(total)]
    missing = sum(not (shards / f"train-{n:05d}-of-{total:05d}.parquet").exists() for n in range(total))
    with get_context("spawn").Pool(processes) as pool:
        for _ in tqdm(pool.imap_unordered(write_shard, jobs), total=total, desc="making shards", unit="shard"):
            pass
    folders = {}
    for size in sizes:
        folder = work / f"data-{image_size}-{size}"
        folder.mkdir(exist_ok=True)
        for number in range(-(-size // rows)):
            link = folder / f"train-{number:05d}-of-{total:05d}.parquet"
            if not link.exists():
                link.symlink_to(shards / link.name)
        folders[size] = folder
    return folders, missing


# ------------------------------------------------------------------------------- the stages
def peak_rss_mb() -> float:
    """Peak RSS of this process and of any child it waited for (Linux reports kilobytes)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def stage_load(table, args) -> dict:
    from aiornot.io import stream

    decoded = skipped = 0
    for batch in stream.decode_batches(table, batch_size=args.batch_size, progress=False):
        decoded, skipped = decoded + len(batch.images), skipped + len(batch.skipped)
    return {"images": decoded, "skipped": skipped}


def stage_split(table, args) -> dict:
    from aiornot.io import datasets

    parts = datasets.split(table.labels, exact=True)
    labels = table.labels["label"].to_numpy()
    return {"images": len(table), "train": len(parts.train), "validation": len(parts.validation),
            "ai_share_train": round(float(labels[parts.train].mean()), 4),
            "ai_share_validation": round(float(labels[parts.validation].mean()), 4)}


def stage_notebook_views(table, args) -> dict:
    """The notebooks' path: their prologue (``datasets.prepare_split``: load, check every image, split) and
    one read of every image through a lazy view, as notebooks 02–04 read them."""
    from aiornot.io import datasets, lazy

    labelled, skipped = datasets.prepare_split(args.data, None, progress=False)
    view = lazy.images(labelled)
    read = sum(1 for pixels in view if pixels.size)  # one image at a time; the shared cache stays within its budget
    return {"images": read, "skipped": len(skipped), "test": int((labelled["split"] == "test").sum()),
            "cache_mb": round(lazy.PIXEL_CACHE.bytes_held / 2**20, 1), "cache_budget_mb": round(lazy.PIXEL_CACHE.budget_bytes / 2**20)}


def _train(table, args, model: str) -> dict:
    from aiornot.io import datasets
    from aiornot.training import feed
    from aiornot.training.train import TrainConfig

    parts = datasets.split(table.labels, exact=True)
    config = TrainConfig(model=model, epochs=1, batch_size=args.batch_size, steps_per_epoch=args.train_steps, patience=1)
    result = feed.fit_stream(table, parts.train, parts.validation, config, validation_steps=args.val_steps, verbose=False)
    return {"images": args.train_steps * args.batch_size, "train_steps": args.train_steps, "validation_steps": args.val_steps,
            "train_seconds": round(result.seconds, 2), "val_auc": round(float(result.history["val_auc"].iloc[-1]), 4)}


def stage_train_seed_cnn(table, args) -> dict:
    return _train(table, args, "seed_cnn")


def stage_train_forensic(table, args) -> dict:
    return _train(table, args, "forensic_detector")


def stage_embed(table, args) -> dict:
    import tempfile

    from aiornot.io import stream
    from aiornot.model import encoders

    encoder = encoders.OnnxImageEncoder()
    rows = np.arange(min(args.embed_cap, len(table)))
    with tempfile.TemporaryDirectory() as folder:
        store = encoders.FeatureStore(folder)
        for batch in stream.decode_batches(table, rows, batch_size=args.batch_size, progress=False):
            encoders.embed_with_store(encoder, batch.images, store, progress=False)
        stored = len(store)
    return {"images": len(rows), "stored": stored, "encoder": encoder.id,
            "capped": f"first {len(rows)} of {len(table)} images (the CLIP tower runs ~150 ms/image on these CPUs)"}


def _bench_detector(args):
    from aiornot.detector import Detector
    from aiornot.model.experts import Fusion

    detector = Detector.load(args.model)
    detector.semantic, detector.fusion = None, Fusion.one_expert("forensic")  # CLIP is timed in the embed stage
    detector.max_tiles = args.max_tiles
    return detector


def stage_score_stream(table, args) -> dict:
    import shutil

    from aiornot.io import stream

    detector = _bench_detector(args)
    out = Path(args.work) / f"scores-{len(table)}"
    shutil.rmtree(out, ignore_errors=True)
    list(detector.predict_many(table.sources(range(4)), provenance=False))  # warm-up, as for the in-memory run
    summary = stream.score_table(table, detector, out, batch_size=args.batch_size, provenance=False, progress=False)
    scores = stream.read_scores(out, columns=["id", "score"])
    return {"images": summary.scored + summary.failed, "failed": summary.failed, "rows_written": len(scores),
            "scoring_seconds": round(summary.seconds, 2), "paired_ratio": paired_ratio(table, detector, args, out.parent)}


def paired_ratio(table, detector, args, work: Path, block: int = 50) -> float:
    """Streaming ÷ in-memory throughput on the same images, in alternating blocks under the same load.

    The machine is shared, so two runs minutes apart can differ by 2× for reasons of their own;
    alternating blocks of ``block`` images measures the cost of reading Parquet and writing scores alone.
    """
    import shutil

    from aiornot.io import stream

    rows, streaming, in_memory = np.arange(min(args.memory_cap, len(table))), 0.0, 0.0
    folder = work / f"paired-{len(table)}"
    shutil.rmtree(folder, ignore_errors=True)
    for part in np.array_split(rows, max(1, len(rows) // block)):
        started = time.perf_counter()
        stream.score_table(table, detector, folder, rows=part, batch_size=args.batch_size, provenance=False, progress=False)
        streaming += time.perf_counter() - started
        files = table.sources(part)  # held in memory before the clock starts
        started = time.perf_counter()
        list(detector.predict_many(files, batch_size=args.batch_size, provenance=False))
        in_memory += time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return round(in_memory / max(streaming, 1e-9), 3)


def stage_score_memory(table, args) -> dict:
    detector = _bench_detector(args)
    rows = np.arange(min(args.memory_cap, len(table)))
    files = table.sources(rows)  # the bytes already in memory: no Parquet, no output
    list(detector.predict_many(files[:4], provenance=False))
    started = time.perf_counter()
    results = list(detector.predict_many(files, batch_size=args.batch_size, provenance=False))
    seconds = time.perf_counter() - started
    return {"images": len(results), "scoring_seconds": round(seconds, 2), "capped": f"first {len(rows)} images in memory"}


def run_stage(args) -> None:
    """One stage in this (fresh) process; prints its figures as JSON on the last line."""
    from aiornot.io import stream

    started = time.perf_counter()
    table = stream.open_table(args.data)
    figures = globals()[f"stage_{args.stage}"](table, args)
    figures["seconds"] = round(time.perf_counter() - started, 2)
    work = figures.get("scoring_seconds") or figures.get("train_seconds") or figures["seconds"]
    figures["images_per_second"] = round(figures["images"] / max(work, 1e-9), 2)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(figures))


def stage_in_subprocess(stage: str, data: Path, args) -> dict:
    command = [sys.executable, __file__, "--stage", stage, "--data", str(data), "--work", str(args.work),
               "--batch-size", str(args.batch_size), "--train-steps", str(args.train_steps), "--val-steps", str(args.val_steps),
               "--embed-cap", str(args.embed_cap), "--memory-cap", str(args.memory_cap), "--max-tiles", str(args.max_tiles)]
    if args.model:
        command += ["--model", args.model]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit code {done.returncode}", "wall_seconds": round(time.perf_counter() - started, 1)}
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_seconds"] = round(time.perf_counter() - started, 1)  # with the process start and imports
    return figures


# ------------------------------------------------------------------------------ the verdicts
def verdicts(results: dict[str, dict[str, dict]], sizes: list[int]) -> dict:
    small, large = str(min(sizes)), str(max(sizes))
    peaks = {size: max(s.get("peak_rss_mb", 0) for s in results[size].values()) for size in results}
    growth = peaks[large] / max(peaks[small], 1e-9) - 1
    memory, streaming = results[large].get("score_memory", {}), results[large].get("score_stream", {})
    whole_set_ratio = streaming.get("images_per_second", 0) / max(memory.get("images_per_second", 0), 1e-9)
    ratio = min(results[size].get("score_stream", {}).get("paired_ratio", 0) for size in results)
    per_stage = {stage: round(results[large][stage]["peak_rss_mb"] / max(results[small][stage]["peak_rss_mb"], 1e-9) - 1, 4)
                 for stage in results[large] if "peak_rss_mb" in results[large][stage] and "peak_rss_mb" in results[small].get(stage, {})}
    return {
        "peak_rss_mb": peaks, "rss_growth": round(growth, 4), "rss_growth_per_stage": per_stage,
        "rss_flat": "PASS" if growth <= TARGET_RSS_GROWTH and len(sizes) > 1 else "FAIL",
        "rss_flat_every_stage": "PASS" if per_stage and max(per_stage.values()) <= TARGET_RSS_GROWTH else "FAIL",
        "rss_under_4gb": "PASS" if max(peaks.values()) < TARGET_RSS_MB else "FAIL",
        "stream_to_memory_throughput": round(ratio, 3),
        "stream_to_memory_throughput_note": "paired: alternating blocks of the same images, same process, same load "
                                            "(the lower of the two sizes); the whole-set figure compares runs minutes apart",
        "stream_to_memory_throughput_whole_set": round(whole_set_ratio, 3),
        "streaming_scoring": "PASS" if ratio >= TARGET_STREAM_RATIO else "FAIL",
    }


def plot(results: dict[str, dict[str, dict]], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in STAGES if all(s in r and "peak_rss_mb" in r[s] for r in results.values())]
    figure, (rss_axis, speed_axis) = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(results)
    for offset, (size, figures) in enumerate(results.items()):
        x = np.arange(len(stages)) + offset * width
        rss_axis.bar(x, [figures[s]["peak_rss_mb"] for s in stages], width, label=f"{int(size):,} images")
        speed_axis.bar(x, [figures[s]["images_per_second"] for s in stages], width, label=f"{int(size):,} images")
    rss_axis.axhline(TARGET_RSS_MB, color="crimson", linestyle="--", label="4 GB target")
    for axis, title in ((rss_axis, "peak RSS per stage (MB)"), (speed_axis, "images / second per stage")):
        axis.set_xticks(np.arange(len(stages)) + width * (len(results) - 1) / 2, stages, rotation=30, ha="right")
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
        axis.legend()
    speed_axis.set_yscale("log")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=6, help="training batches per capped epoch")
    parser.add_argument("--val-steps", type=int, default=2, help="validation batches per capped epoch")
    parser.add_argument("--embed-cap", type=int, default=48, help="images embedded with CLIP per size")
    parser.add_argument("--memory-cap", type=int, default=400, help="images scored from memory (the baseline)")
    parser.add_argument("--max-tiles", type=int, default=16, help="forensic tiles per image when scoring")
    parser.add_argument("--model", help="detector folder (default models/default)")
    parser.add_argument("--work", default=str(ROOT / "build" / "bench_scale"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "benchmark_scale.json"))
    parser.add_argument("--processes", type=int, default=max(1, len(os.sched_getaffinity(0))))
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        run_stage(args)
        return 0
    if len(args.sizes) < 1 or min(args.sizes) < 100:
        parser.error("--sizes needs at least one size of 100 images or more")
    sizes = sorted(set(args.sizes))
    started = time.perf_counter()
    work = Path(args.work)
    made = time.perf_counter()
    folders, made_shards = make_datasets(work, sizes, args.image_size, args.processes)
    making_seconds = time.perf_counter() - made
    results: dict[str, dict[str, dict]] = {}
    for size in sizes:
        results[str(size)] = {}
        for stage in STAGES:
            figures = stage_in_subprocess(stage, folders[size], args)
            results[str(size)][stage] = figures
            shown = figures.get("error") or f"{figures['images_per_second']:>8.1f} img/s  {figures['peak_rss_mb']:>7.0f} MB  {figures['wall_seconds']:>6.1f} s"
            print(f"{size:>7,} images  {stage:<15} {shown}", flush=True)
    summary = verdicts(results, sizes)
    report = {
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
        "dataset": {"layout": "Hugging Face competitions/aiornot Parquet (id, image{bytes,path}, label)",
                    "image_size": args.image_size, "shard_rows": shard_rows(sizes), "row_group_rows": ROW_GROUP_ROWS,
                    "making_seconds": round(making_seconds, 1), "shards_made": made_shards,
                    "shards_reused": -(-max(sizes) // shard_rows(sizes)) - made_shards},
        "settings": {"batch_size": args.batch_size, "train_steps": args.train_steps, "val_steps": args.val_steps,
                     "embed_cap": args.embed_cap, "memory_cap": args.memory_cap, "max_tiles": args.max_tiles,
                     "scoring": "forensic expert of the model, pixels only (no provenance); the CLIP tower is the embed stage",
                     "defaults": args.sizes == [5000, 20000] and args.image_size == 512},
        "results": results,
        "targets": {"rss_growth_max": TARGET_RSS_GROWTH, "rss_max_mb": TARGET_RSS_MB, "stream_ratio_min": TARGET_STREAM_RATIO},
        "verdict": summary,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    plot(results, out.parent / "figures" / "benchmark_scale.png")
    print(f"peak RSS {summary['peak_rss_mb']} MB, growth {summary['rss_growth']:+.1%}: flat {summary['rss_flat']}, "
          f"under 4 GB {summary['rss_under_4gb']}; every stage flat {summary['rss_flat_every_stage']} "
          f"(largest growth {max(summary['rss_growth_per_stage'].values()):+.1%})")
    print(f"streaming / in-memory scoring throughput {summary['stream_to_memory_throughput']:.2f}: {summary['streaming_scoring']}")
    print(f"wrote {out} in {report['total_seconds']:.0f} s")
    return 0 if all(summary[k] == "PASS" for k in ("rss_flat", "rss_under_4gb", "streaming_scoring")) else 1


if __name__ == "__main__":
    sys.exit(main())

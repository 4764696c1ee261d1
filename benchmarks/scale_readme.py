"""Write `make bench-scale`'s figures into the README, between its ``bench-scale`` markers.

Every number in the block comes from ``reports/benchmark_scale.json`` (written by
``benchmarks/bench_scale.py``); none is typed in by hand. Usage:
``python benchmarks/scale_readme.py [README.md] [reports/benchmark_scale.json]``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench-scale:start -->", "<!-- bench-scale:end -->"


def stage_label(stage: str, figures: dict, settings: dict) -> str:
    """What a stage did, in words a reader of the README follows."""
    batches = f"{settings['train_steps']} batches of {settings['batch_size']}"
    return {
        "load": "load (decode every image)",
        "split": "split (labels only)",
        "notebook_views": "notebooks: prologue + every image read through a lazy view",
        "train_seed_cnn": f"seed CNN, {batches}",
        "train_forensic": f"forensic CNN, {batches}",
        "embed": f"CLIP embeddings (first {settings['embed_cap']})",
        "score_stream": "scoring, streamed to Parquet",
        "score_memory": f"scoring, {settings['memory_cap']} images in memory",
    }.get(stage, stage)


def _mb(value: float) -> str:
    return f"{value:,.0f} MB"


def block(report: dict) -> str:
    """The README block: one table row per stage, then the verdicts."""
    results, settings, verdict = report["results"], report["settings"], report["verdict"]
    sizes = sorted(results, key=int)
    small, large = sizes[0], sizes[-1]
    header = " | ".join(f"{int(s):,}: images/s | peak RSS" for s in (small, large))
    lines = [f"| stage | {header} | wall ({int(large):,}) |", "|---|" + "---:|" * 5]
    for stage, figures in results[large].items():
        if "peak_rss_mb" not in figures or "peak_rss_mb" not in results[small].get(stage, {}):
            lines.append(f"| {stage_label(stage, figures, settings)} | failed: {figures.get('error', '?')} |||||")
            continue
        first = results[small][stage]
        lines.append(f"| {stage_label(stage, figures, settings)} | {first['images_per_second']:,.1f} | {_mb(first['peak_rss_mb'])} | "
                     f"{figures['images_per_second']:,.1f} | {_mb(figures['peak_rss_mb'])} | {figures['wall_seconds']:,.0f} s |")
    peaks, growth = verdict["peak_rss_mb"], verdict["rss_growth"]
    worst = max(verdict["rss_growth_per_stage"].values())
    measured = {stage: f["peak_rss_mb"] for stage, f in results[large].items() if "peak_rss_mb" in f}
    peak_stage = stage_label(max(measured, key=measured.get), {}, settings) if measured else "?"
    views = results[large].get("notebook_views", {})
    notebook = (f" The notebooks' own path (their prologue, then every image once through `aiornot.io.lazy`) peaks at "
                f"{_mb(results[small]['notebook_views']['peak_rss_mb'])} and {_mb(views['peak_rss_mb'])}: the decode cache "
                f"stays within its {views.get('cache_budget_mb', '?')} MiB budget whatever the number of images."
                if "peak_rss_mb" in views and "peak_rss_mb" in results[small].get("notebook_views", {}) else "")
    lines += [
        "",
        f"Peak RSS {_mb(peaks[small])} at {int(small):,} images and {_mb(peaks[large])} at {int(large):,} ({growth:+.1%}; "
        f"every stage within {worst:+.1%}): **flat, {verdict['rss_flat']}**, and under 4 GB, **{verdict['rss_under_4gb']}** "
        f"(the peak is the stage \"{peak_stage}\")."
        f"{notebook} Streaming scoring runs at {verdict['stream_to_memory_throughput']:.0%} of the same detector on the same "
        f"images held in memory (alternating blocks, so the machine's load hits both alike; "
        f"{verdict['stream_to_memory_throughput_whole_set']:.0%} comparing the whole-set run with the in-memory one): "
        f"**{verdict['streaming_scoring']}**. Scoring here is the forensic expert at {settings['max_tiles']} tiles an image, "
        f"pixels only; provenance checks and the CLIP tower (the embed stage) are left out of it to keep the run short "
        f"({report['total_seconds'] / 60:.0f} min measured on {report['machine']['cpus']} cores, load average "
        f"{report['machine']['load_average_at_end'][0]:.1f} at the end, measured {report['measured']}). Figures: "
        "`reports/benchmark_scale.json`, `reports/figures/benchmark_scale.png`; `BENCH_SCALE_ARGS=\"--sizes 500 2000\"` for a quick run.",
    ]
    return "\n".join(lines)


def update(readme: Path, report_path: Path) -> bool:
    """Replace the block in ``readme``; False (and a message) when the markers or the report are missing."""
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"{readme}: no {START} … {END} markers; nothing written", file=sys.stderr)
        return False
    if not report_path.is_file():
        print(f"{report_path} does not exist; run `make bench-scale` first", file=sys.stderr)
        return False
    body = block(json.loads(report_path.read_text()))
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    readme.write_text(pattern.sub(lambda _: f"{START}\n{body}\n{END}", text, count=1))
    return True


if __name__ == "__main__":
    arguments = sys.argv[1:]
    readme = Path(arguments[0]) if arguments else ROOT / "README.md"
    report = Path(arguments[1]) if len(arguments) > 1 else ROOT / "reports" / "benchmark_scale.json"
    sys.exit(0 if update(readme, report) else 1)

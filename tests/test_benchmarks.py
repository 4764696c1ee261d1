"""The scripts of benchmarks/ that write README blocks from their JSON reports (the measurements are ``make bench``'s)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[1]


def test_the_bench_scale_block_is_written_from_the_json_between_the_markers(tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("scale_readme", ROOT_DIR / "benchmarks" / "scale_readme.py")
    scale_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scale_readme)
    stage = lambda speed, rss: {"images_per_second": speed, "peak_rss_mb": rss, "wall_seconds": 12.0}  # noqa: E731
    report = {
        "results": {"5000": {"load": stage(300.0, 330.0), "notebook_views": stage(90.0, 1100.0)},
                    "20000": {"load": stage(420.0, 331.0), "notebook_views": {**stage(95.0, 1110.0), "cache_budget_mb": 768}}},
        "settings": {"train_steps": 6, "batch_size": 16, "embed_cap": 48, "memory_cap": 400, "max_tiles": 16},
        "verdict": {"peak_rss_mb": {"5000": 1100.0, "20000": 1110.0}, "rss_growth": 0.009, "rss_flat": "PASS",
                    "rss_growth_per_stage": {"load": 0.003, "notebook_views": 0.009}, "rss_under_4gb": "PASS",
                    "stream_to_memory_throughput": 0.5, "stream_to_memory_throughput_whole_set": 0.6, "streaming_scoring": "FAIL"},
        "total_seconds": 600, "machine": {"cpus": 2, "load_average_at_end": [1.0]}, "measured": "2026-12-02 05:00",
    }
    (tmp_path / "scale.json").write_text(json.dumps(report))
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{scale_readme.START}\nstale 999\n{scale_readme.END}\nafter\n")
    assert scale_readme.update(readme, tmp_path / "scale.json")
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "stale 999" not in text
    assert "| load (decode every image) | 300.0 | 330 MB | 420.0 | 331 MB | 12 s |" in text
    assert "1,100 MB and 1,110 MB" in text and "768 MiB" in text and "**FAIL**" in text and "50%" in text
    assert not scale_readme.update(readme, tmp_path / "missing.json")  # a missing report writes nothing
    assert readme.read_text() == text

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


def test_the_bench_times_the_default_id_photo_path_and_the_face_score_path_beside_it() -> None:
    """``make bench``'s whole-path figure is the default ID-photo path (no face-crop score); the opt-in
    face-score path is timed beside it, under its own key (the benchmark itself is never run here)."""
    import importlib.util

    from aiornot.contract.result import Result

    spec = importlib.util.spec_from_file_location("bench", ROOT_DIR / "benchmarks" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    asked: list[tuple[str, dict]] = []

    class Timed:
        """Stands in for the Detector: records what each call asked for."""

        used_experts, expert_names = ("semantic",), ("forensic", "semantic")

        def predict(self, data: bytes, **options) -> Result:
            asked.append(("predict", options))
            face = 0.3 if options.get("face_score") and data != b"no face" else None
            return Result(model="m", score=0.5, face_score=face)

        def predict_many(self, files, **options):
            asked.append(("predict_many", options))
            return iter([Result(model="m", score=0.5) for _ in files])

    pipeline = bench.pipeline_latency(Timed(), [b"a", b"no face", b"c"], face_score_photos=2)
    default, face = ("predict", {"id_photo": True}), ("predict", {"id_photo": True, "face_score": True})
    assert asked == [default] * 4 + [("predict_many", {"batch_size": 32, "id_photo": True})] + [face] * 3  # warm-ups included
    assert pipeline["photos"] == 3 and set(pipeline) >= {"p50_ms", "p95_ms", "batch32_images_per_second", "experts"}
    assert set(pipeline["with_face_score"]) == {"p50_ms", "photos", "faces_scored"}
    assert pipeline["with_face_score"]["photos"] == 2 and pipeline["with_face_score"]["faces_scored"] == 1

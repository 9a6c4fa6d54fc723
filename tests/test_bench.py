"""scripts/bench.py runs and reports every figure (the targets themselves are benchmarks,
checked by reading its output, not asserted here)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_script

pytestmark = pytest.mark.slow


def test_bench_reports_all_three_pipelines(tmp_path) -> None:
    out = tmp_path / "bench.json"
    res = run_script(
        [
            "scripts/bench.py",
            "model=tiny",
            "source.per_class=40",
            "preprocess.image_size=32",
            "data.batch_size=16",
            "bench.steps=3",
            "bench.warmup=1",
            "bench.naive_workers=0",
            f"bench.out={out}",
            "bench.real_pictures=4",
            "bench.real_sizes=[300,500]",
            "bench.real_steps=1",
        ],
        env={"ASTRO_EXP_ROOT": str(tmp_path)},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    figures = json.loads(out.read_text())
    for key in ("model_only_img_s", "end_to_end_img_s", "naive_img_s"):
        assert figures[key] > 0
    assert figures["end_to_end_over_model_only"] == pytest.approx(
        figures["end_to_end_img_s"] / figures["model_only_img_s"], rel=0.01
    )
    # where a batch's time goes, and the real-size figures (cache build: full vs draft decode)
    assert set(figures["train_parts_ms"]) == {
        "loader",
        "prepare",
        "augment",
        "augment_unfused",
        "normalize",
        "step",
        "end_to_end",
    }
    for key in ("naive_real_img_s", "cache_build_full_img_s", "cache_build_draft_img_s"):
        assert figures[key] > 0
    assert figures["cache_build_input"].startswith("4 JPEGs")

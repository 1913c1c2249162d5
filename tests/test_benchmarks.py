"""The benchmark scripts run and report what they claim (tiny sizes; the figures themselves are not tested)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest
from conftest import REPO

BENCH = REPO / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_steady_rate_leaves_out_warmup_steps():
    gpu_perf = _script("gpu_perf")
    # one slow warm-up step (10 s), then three steps of 0.5 s
    rate, timed = gpu_perf.steady_rate([0.0, 10.0, 10.5, 11.0, 11.5], warmup=1)
    assert timed == 3 and rate == pytest.approx(2.0)
    assert gpu_perf.steady_rate([1.0], warmup=0) == (None, 0)


def test_generated_training_data_has_the_loss_columns(tmp_path):
    gpu_perf = _script("gpu_perf")
    path = tmp_path / "d.jsonl"
    pairs = gpu_perf.write_train_data(path, rows=5, seed=0, with_label=True)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 5 and all(0 <= r["label"] <= 1 for r in rows)
    assert [(r["anchor"], r["positive"]) for r in rows] == pairs
    assert pairs == gpu_perf.write_train_data(tmp_path / "e.jsonl", rows=5, seed=0, with_label=False)  # fixed seed


def test_encode_worker_reports_throughput(tiny_qwen_st, tmp_path):
    gpu_perf = _script("gpu_perf")
    report = tmp_path / "encode.json"
    assert gpu_perf.worker_encode(report, str(tiny_qwen_st), "sdpa", "cpu", "float32", [4], 8, 1) == 0
    result = json.loads(report.read_text())
    assert result["num_texts"] == 8 and result["num_tokens"] > 8
    cell = result["results"]["4"]
    assert cell["finite"] and cell["texts_per_s"] > 0 and len(cell["seconds"]) == 1


def test_bench_encode_ours_equals_plain_on_exported_model(tiny_qwen_st, tmp_path):
    bench = _script("bench_encode")
    out = tmp_path / "bench_encode.json"
    assert bench.main(["--model", str(tiny_qwen_st), "--max-texts", "12", "--repeats", "2", "--batch-sizes", "4",
                       "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["num_texts"] == 12
    # our loading path encodes the exported model exactly as plain sentence-transformers does
    assert report["agreement_with_plain"]["ours"]["max_abs_diff"] == 0.0
    cells = report["results"]["4"]
    assert set(cells) == {"plain", "ours"} and all(len(c["seconds"]) == 2 for c in cells.values())
    assert cells["plain"]["ratio_to_plain"] == 1.0 and cells["ours"]["texts_per_s"] > 0


def test_bench_encode_onnx_matches_plain(tiny_qwen_st, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the ONNX path is measurement only)")
    pytest.importorskip("onnx", reason="onnx is not installed")
    bench = _script("bench_encode")
    out = tmp_path / "bench_encode.json"
    assert bench.main(["--model", str(tiny_qwen_st), "--max-texts", "12", "--repeats", "1", "--batch-sizes", "4",
                       "--onnx", "--workdir", str(tmp_path / "w"), "--output", str(out)]) == 0
    agreement = json.loads(out.read_text())["agreement_with_plain"]
    assert agreement["onnx"]["max_abs_diff"] < 1e-4
    assert agreement["onnx-int8"]["min_cosine"] > 0.95


@pytest.mark.slow
def test_gpu_perf_smoke_runs_end_to_end(tmp_path):
    out = tmp_path / "gpu_perf.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gpu_perf.py"), "--smoke", "--losses", "infonce", "--steps", "2",
         "--workdir", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True, text=True, cwd=str(REPO), timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    (train,) = report["training"]
    assert train["status"] == "ok" and train["timed_steps"] == 1 and train["tokens_per_s"] > 0
    assert train["losses_finite"] and len(train["losses"]) == 2 and all(math.isfinite(x) for x in train["losses"])
    (encode,) = report["encoding"]
    assert encode["status"] == "ok" and set(encode["results"]) == {"8", "16"}
    assert "| infonce | sdpa |" in proc.stdout


@pytest.mark.slow
def test_bench_train_runs_ours_and_plain_and_compares_their_loss_curves(stsb_dir, tmp_path):
    """The training benchmark end to end at a toy size: both runs report, and the loss curves agree."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_train.py"), "--rows", "320", "--hidden", "32", "--layers", "1",
         "--repeats", "1", "--impls", "ours", "plain", "--variants", "cosine", "--stsb", str(stsb_dir / "train.tsv"),
         "--workdir", str(tmp_path / "work"), "--output", str(out)],
        capture_output=True, text=True, cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())["results"]["cosine"]
    assert set(result["medians"]) == {"ours", "plain"} and result["rows"] == 320
    for impl in ("ours", "plain"):
        assert result["medians"][impl]["samples_per_s"] > 0 and result["medians"][impl]["peak_rss_mib"] > 0
    assert result["loss_curves"]["max_relative_difference"] < 1e-4  # 20 steps, logged at 10 and 20

"""Smoke run of bench_gradient_norm.py --quick: it runs and reports; no timing asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_bench(*args: str) -> subprocess.CompletedProcess:
    """bench_gradient_norm.py with ``args``, importing this checkout's keras_initzoo."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gradient_norm.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.slow
def test_benchmark_quick_mode_runs_and_writes_a_table(tmp_path):
    out = tmp_path / "results.md"
    # No MobileNetV2: its tracing alone takes minutes.
    proc = _run_bench("--quick", "--models", "mlp,deep", "--write", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    rows = ["| no callback |", "| every step (update_freq=1) |", "| update_freq=100 |"]
    rows.append("bytes/(scalar x step)")
    if keras.backend.backend() == "tensorflow":  # the peers run on TensorFlow only
        rows.append("| extra GradientTape pass per step |")
    for row in rows:
        assert row in text
    assert "Command: `python benchmarks/bench_gradient_norm.py --quick --models" in text


@pytest.mark.slow
def test_paired_mode_times_whole_fits_and_reports_the_pass_rule(tmp_path):
    out = tmp_path / "RESULTS_gradient_norm_paired_x.md"
    proc = _run_bench("--quick", "--paired", "2", "--models", "mlp", "--write", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    assert "| whole fit: ratio | 90 % interval | mean step: ratio |" in text
    for name in ("no callback", "every step (update_freq=1)", "update_freq=100"):
        assert f"| 20 x Dense(32), batch 16 | {name} |" in text
    assert "every step (update_freq=1): whole fit " in text
    assert "2 rounds of 6-step fits): upper end <= 1.05: " in text
    # Written outside benchmarks/: the README is left alone; inside, its block is
    # rebuilt (checked on a copy below).
    bench = _bench_module()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{bench.PAIRED_BEGIN}\nold\n{bench.PAIRED_END}\n\n## next\n")
    bench.update_readme(tmp_path, readme)
    new = readme.read_text()
    assert "old" not in new and new.endswith(f"{bench.PAIRED_END}\n\n## next\n")
    assert text[text.index("Command:") :].strip() in new


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_gradient_norm", ROOT / "benchmarks" / "bench_gradient_norm.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_logged_step_excess_measures_a_logged_step_against_its_neighbours():
    bench = _bench_module()
    timer = bench.StepTimer(skip=3)
    timer.start = 100  # times[k] is optimizer step 101 + k
    # A slow phase (steps 10..19 at 12 ms) and logged steps costing 2 ms more.
    timer.times = [0.010] * 10 + [0.012] * 10 + [0.010] * 10
    logged = [101 + 1, 101 + 12, 101 + 25]  # k = 1 (skipped), 12, 25
    for k in (12, 25):
        timer.times[k] += 0.002
    excess = bench.logged_step_excess(timer, logged)
    assert excess == pytest.approx([0.002, 0.002])
    # Every step logged: no unlogged neighbour, nothing to compare with.
    assert bench.logged_step_excess(timer, [101 + k for k in range(30)]) == []


def test_bootstrap_interval_brackets_the_median():
    bench = _bench_module()
    values = [1.00, 1.01, 0.99, 1.03, 0.98, 1.02, 1.00]
    lo, hi = bench.bootstrap_interval(values)
    assert lo <= 1.00 <= hi
    assert 0.98 <= lo < hi <= 1.03
    assert bench.bootstrap_interval([1.5] * 4) == (1.5, 1.5)


@pytest.mark.slow
def test_machine_noise_probe_runs_and_reports_the_spread():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "machine_noise.py"),
            *("--depth", "2", "--width", "8", "--batch", "4", "--blocks", "3", "--block", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "2 x Dense(8), blocks of 2 steps, ms/step:"
    assert len(lines[1].split()) == 3
    assert lines[2].startswith("min ") and "coefficient of variation" in lines[2]

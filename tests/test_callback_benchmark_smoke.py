"""Smoke run of bench_gradient_norm.py --quick: it runs and reports; no timing asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_quick_mode_runs_and_writes_a_table(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_gradient_norm.py"),
            "--quick",
            "--write",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    for row in (
        "| no callback |",
        "| every step (update_freq=1) |",
        "| update_freq=100 |",
        "| extra GradientTape pass per step |",
        "bytes/(scalar x step)",
    ):
        assert row in text
    assert "Command: `python benchmarks/bench_gradient_norm.py --quick --write" in text

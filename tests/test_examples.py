"""Each example script runs (reduced with --quick) and its numbers show its lesson."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, tmp_path: Path, *extra: str) -> dict:
    """Import examples/<name>.py and call its main() with --quick and temporary outputs."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(
        [
            "--quick",
            "--logdir",
            str(tmp_path / "runs"),
            "--outdir",
            str(tmp_path / "figures"),
            *extra,
        ]
    )
    for figure in result["figures"]:
        assert os.path.getsize(figure) > 10_000, figure  # a real plot, not an empty canvas
    return result


def run_dirs(tmp_path: Path) -> set[str]:
    runs = tmp_path / "runs"
    return {p.name for p in runs.iterdir() if any(p.glob("events.out.tfevents.*"))}


def test_every_example_has_a_test():
    tested = {
        "01_minimal_example",
        "02_gradient_descent",
        "03_symmetry",
        "04_vanishing_exploding",
        "05_glorot_he_lecun",
        "06_exact_gains",  # tested in test_gains.py
    }
    assert {p.stem for p in EXAMPLES.glob("[0-9]*.py")} == tested


def test_minimal_example_recovers_weights_and_bias(tmp_path, events):
    result = run_example("01_minimal_example", tmp_path)
    assert all(-0.1 <= v <= 0.1 for v in result["initial"])  # zoo_uniform is U[-0.1, 0.1]
    # Constant-lr SGD with batch 32 keeps jittering around the optimum: measured within
    # 0.07 of the least-squares weights; 0.15 still tells 2 from 1.8 and 5 from 4.7.
    assert result["weights"] == pytest.approx([2.0, -3.0], abs=0.15)
    assert result["bias"] == pytest.approx(5.0, abs=0.15)
    assert result["least_squares"] == pytest.approx([2.0, -3.0, 5.0], abs=0.05)
    assert result["loss"][-1] < 0.6  # noise U(-1, 1) has variance 1/3: the floor
    assert run_dirs(tmp_path) == {"zoo_uniform"}
    assert "loss/train" in events(tmp_path / "runs" / "zoo_uniform").Tags()["scalars"]


def test_gradient_descent_by_hand(tmp_path):
    result = run_example("02_gradient_descent", tmp_path)
    runs = result["runs"]
    assert result["derivative_gap"] < 1e-9  # 10x + 3 is f's exact derivative
    assert runs["x0=4, lr=0.05"][-1] == pytest.approx(-0.3, abs=1e-3)
    assert runs["x0=4, lr=0.1"][1] == pytest.approx(-0.3, abs=1e-12)  # 1 - 10 lr = 0
    assert abs(runs["x0=4, lr=0.21"][-1]) > abs(runs["x0=4, lr=0.21"][0])  # diverges
    slow, fast = (
        result["steps_to_converge"]["x0=1000, lr=0.05"],
        result["steps_to_converge"]["x0=4, lr=0.05"],
    )
    assert fast is not None and slow is not None and slow > fast  # bad start: just later
    assert result["steps_to_converge"]["x0=4, lr=0.21"] is None
    assert len(run_dirs(tmp_path)) == 6


def test_gradient_descent_script_runs_from_the_command_line(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "02_gradient_descent.py"),
            "--logdir",
            str(tmp_path / "runs"),
            "--outdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "x* = -0.3" in done.stdout and "tensorboard --logdir" in done.stdout


def test_symmetry_constant_init_keeps_units_identical(tmp_path):
    report = run_example("03_symmetry", tmp_path)["schemes"]
    for tied in ("zoo_zeros", "zoo_constant_0.5"):
        rows = report[tied]["rows"]
        assert report[tied]["spread"] < 1e-6  # every unit made the very same updates
        assert report[tied]["rank"] == 1
        assert abs(rows).max() > 1e-3  # they did train: identical, not merely untouched
    assert report["zoo_glorot"]["rank"] == 8
    assert report["zoo_glorot"]["spread"] > 0.1
    assert report["zoo_glorot"]["test_accuracy"] > report["zoo_constant_0.5"]["test_accuracy"]
    assert run_dirs(tmp_path) == {"zoo_zeros", "zoo_constant_0.5", "zoo_glorot"}


@pytest.mark.slow
def test_small_vanishes_and_large_explodes_in_deep_tanh(tmp_path):
    result = run_example("04_vanishing_exploding", tmp_path)
    tanh = result["growth"]["tanh"]
    # 10 tanh layers of 64: 0.01*N shrinks the backprop signal ~0.08x per layer and
    # 10*N grows it ~6x (measured ~1e-10 and ~1e7); Glorot stays within ~3x of level.
    assert tanh["zoo_small"] < 1e-4
    assert tanh["zoo_large"] > 1e3
    assert 0.1 < tanh["zoo_glorot"] < 10
    assert result["growth"]["sigmoid"]["zoo_large"] > 1e3
    large = result["profiles"]["tanh"]["zoo_large"][:-1]
    assert all(s.activation_std > 0.9 for s in large)  # saturated at +-1
    small = result["profiles"]["tanh"]["zoo_small"][:-1]
    assert small[-1].activation_std < 1e-6 * small[0].activation_std
    results = result["results"]
    assert results["zoo_glorot"].final_loss < results["zoo_small"].final_loss
    assert run_dirs(tmp_path) == {"zoo_small", "zoo_large", "zoo_glorot"}


@pytest.mark.slow
def test_he_trains_deep_relu_glorot_stalls_selu_lecun_self_normalizes(tmp_path):
    results = run_example("05_glorot_he_lecun", tmp_path)["results"]
    he, glorot, small = results["zoo_he"], results["zoo_glorot"], results["zoo_small"]
    assert he.final_loss < glorot.final_loss
    assert he.final_loss < 0.8 * math.log(10)  # learning, clearly below chance
    for stalled in (glorot, small):
        assert stalled.final_loss == pytest.approx(math.log(10), abs=0.05)  # chance
    selu = results["zoo_lecun+selu"].init_stats[:-1]
    assert len(selu) == 30
    for layer in selu:
        # Self-normalizing fixed point is (0, 1); digits' constant pixels and the
        # 256-sample probe make layers wander (measured 0.84-1.02).
        assert 0.5 <= layer.activation_std**2 <= 2.0, layer
        assert abs(layer.activation_mean) < 0.25, layer
    assert run_dirs(tmp_path) == {"zoo_he", "zoo_glorot", "zoo_small", "zoo_lecun+selu"}

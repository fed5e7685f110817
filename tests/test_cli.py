"""The ``initzoo`` command line: help, list, argument errors, compare, and the timed demo.

Also that it starts fast and speaks quietly: ``--help`` and ``list`` load no
framework, and a real ``compare`` prints no framework log lines.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time

import pytest

import keras_initzoo as kiz
import keras_initzoo_cli
from keras_initzoo import cli, registry
from keras_initzoo_cli import quiet, schemes
from keras_initzoo_cli.advice import TENSORBOARD_ADVICE, plain

# Framework start-up lines that must not reach the command line's output.
NOISE = ("cuda", "absl", "onednn", "cpu_feature_guard", "i0000", "w0000", "e0000")
HEAVY = ("tensorflow", "keras", "numpy", "keras_initzoo")
# Runs the console script's main and reports, at exit, which heavy packages got loaded.
PROBE = f"""
import atexit, sys
def report():
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
    sys.stderr.write("LOADED=" + ",".join(loaded) + "\\n")
atexit.register(report)
from keras_initzoo_cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env_without_tf_logging() -> dict[str, str]:
    """This process's environment less the variables the CLI sets when they are unset."""
    return {k: v for k, v in os.environ.items() if k != quiet.LEVEL_VARIABLE}


def _table_rows(output: str) -> dict[str, list[str]]:
    """``{scheme: [final loss, test acc, |dL/dh| Ld, |dL/dh| L1, per layer, reading]}``
    from a printed table (cells are two or more spaces apart)."""
    return {
        cells[0]: cells[1:]
        for line in output.splitlines()
        if (cells := re.split(r"\s{2,}", line.strip()))[0].startswith("zoo_") and len(cells) == 7
    }


def _tags(events, run_dir) -> set[str]:
    acc = events(run_dir)
    return set(acc.Tags()["scalars"]) | set(acc.Tags()["tensors"])


def _has_depth_image(events, run_dir) -> bool:
    """The run holds GradientNormLogger's ``grad_norm_by_depth`` heatmap, for the Images tab."""
    acc = events(run_dir)
    if "grad_norm_by_depth" in acc.Tags()["images"]:  # a v1 image summary
        return True
    return (
        "grad_norm_by_depth" in acc.Tags()["tensors"]
        and acc.SummaryMetadata("grad_norm_by_depth").plugin_data.plugin_name == "images"
    )


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("list", "demo", "compare"):
        assert re.search(rf"^\s+{command}\s", out, re.M), out


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "keras_initzoo", "compare", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for flag in (
        "--schemes",
        "--depth",
        "--activation",
        "--epochs",
        "--logdir",
        "--width",
        "--seed",
        "--dataset",
    ):
        assert flag in done.stdout


def test_list_prints_every_registered_alias(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    aliases = [info.alias for info in kiz.list_initializers()]
    assert len(aliases) >= 16
    for alias in aliases:
        assert f"`{alias}`" in out
    assert out == registry.markdown_table() + "\n"


def test_shipped_scheme_table_is_the_registry_s():
    # `initzoo list` prints a file so that it loads no framework; this keeps the file true.
    assert schemes.read_table() == registry.markdown_table() + "\n", (
        f"{schemes.table_path()} is stale: python -m keras_initzoo_cli.schemes"
    )


def test_the_library_never_imports_the_command_line():
    """Imports run one way: keras_initzoo_cli reads the library, the library not the CLI.

    ``keras_initzoo/cli.py`` is the entry point that hands over to it (``python -m
    keras_initzoo``); the experiments share the CLI's plain choices (``settings``).
    """
    from pathlib import Path

    package = Path(kiz.__file__).parent
    allowed = {"cli.py", "experiments/config.py", "experiments/data.py"}
    importing = re.compile(r"^\s*(from|import)\s+keras_initzoo_cli\b", re.M)
    reaching_up = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if importing.search(path.read_text(encoding="utf-8"))
        and str(path.relative_to(package)) not in allowed
    )
    assert reaching_up == []


def test_cli_package_version_is_the_library_s():
    assert keras_initzoo_cli.__version__ == kiz.__version__


def test_cli_module_reexports_the_light_package():
    assert cli.main is keras_initzoo_cli.main
    assert cli.build_parser is keras_initzoo_cli.build_parser


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["compare", "--help"], ["--version"]])
def test_help_and_list_load_no_framework(argv):
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    seconds = time.perf_counter() - start
    # Reported, not asserted (timings belong to benchmarks): about 0.1 s on 2 cores.
    print(f"initzoo {' '.join(argv)}: {seconds:.2f} s")
    assert done.returncode == 0, done.stderr
    loaded = done.stderr.rsplit("LOADED=", 1)[1].strip()
    assert loaded == "", f"initzoo {' '.join(argv)} imported {loaded}"
    assert done.stdout.strip()


def test_compare_output_holds_no_framework_log_lines_and_one_progress_bar(tmp_path):
    done, output = _run_quiet(
        [
            sys.executable,
            "-m",
            "keras_initzoo_cli",
            "compare",
            "--schemes",
            "zoo_he,zoo_small",
            "--depth",
            "2",
            "--epochs",
            "2",
            "--logdir",
            str(tmp_path),
        ]
    )
    # One Keras bar over schemes x epochs (unit "epoch"), none per scheme (unit "step").
    assert output.count("training zoo_he, zoo_small: 2 epochs each") == 1
    assert "4/4" in output and "/epoch" in output and "/step" not in output
    assert list(_table_rows(done.stdout)) == ["zoo_he", "zoo_small"]
    # Output to a pipe is read in a file or a log: no ANSI colours, no redrawing (control:
    # Keras' bar at verbose=1, as before, writes "\x1b[1m 1/4\x1b[0m" and backspaces).
    for code in ("\x1b", "\b", "\r"):
        assert code not in output, f"{code!r} in the output:\n{output!r}"


def _run_quiet(command: list[str]):
    """Runs ``command``; fails on a non-zero exit or any framework log line in its output."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=_env_without_tf_logging()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    for noise in NOISE:
        assert noise not in output.lower(), f"{noise!r} in the output:\n{output}"
    return done, output


def test_report_output_holds_no_framework_log_lines(tmp_path):
    import keras

    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    done, _ = _run_quiet([sys.executable, "-m", "keras_initzoo_cli", "report", str(path)])
    assert "dense" in done.stdout
    assert "measured in training mode" in done.stdout
    command = [sys.executable, "-m", "keras_initzoo_cli", "report", str(path), "--inference"]
    done, _ = _run_quiet(command)
    assert "measured in inference mode" in done.stdout


# What TensorFlow 2.21 writes to file descriptor 2 while it loads on a machine without a GPU,
# plus a framework warning and error that are not about missing hardware.
START_UP_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795776295.501215   17305 cudart_stub.cc:31] Could not find cuda drivers",
    "I0000 00:00:1795776295.966794   17305 cpu_feature_guard.cc:227] This TensorFlow binary",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild",
    "W0000 00:00:1795776295.966794   17305 other.cc:1] a framework warning",
    "E0000 00:00:1795776295.966794   17305 other.cc:2] a framework error",
)
CUINIT = "E0000 00:00:1795776303.817572   17305 cuda_platform.cc:52] failed call to cuInit"
FAKE_TENSORFLOW = f"""
import os, sys, warnings
for line in {START_UP_LINES!r}:
    os.write(2, line.encode() + b"\\n")
warnings.warn("a real warning", UserWarning)
print("printed by python", file=sys.stderr)

class config:
    @staticmethod
    def list_physical_devices():
        os.write(2, {CUINIT!r}.encode() + b"\\n")
        return []
"""


@pytest.mark.parametrize("level", [None, "0"])
def test_quiet_import_drops_start_up_noise_and_keeps_real_messages(tmp_path, level):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    env = _env_without_tf_logging() | {"PYTHONPATH": str(tmp_path)}
    if level is not None:
        env[quiet.LEVEL_VARIABLE] = level
    code = (
        "import os; from keras_initzoo_cli.quiet import import_tensorflow; import_tensorflow(); "
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "UserWarning: a real warning" in err and "printed by python" in err
    assert "a framework error" in err
    if level is None:  # the CLI's default: level 2 and no hardware-probe reports
        assert done.stdout.strip() == "2"
        for gone in ("absl", "cuda", "cpu_feature_guard", "To enable", "a framework warning"):
            assert gone not in err, err
    else:  # the user's own level is kept, and TensorFlow's lines with it
        assert done.stdout.strip() == "0"
        for kept in ("absl", "cudart_stub", "To enable", "a framework warning", "cuInit"):
            assert kept in err, err


@pytest.mark.parametrize(
    ("argv", "flag", "message"),
    [
        (["--depth", "0"], "--depth", "must be >= 1, got 0"),
        (["--width", "-3"], "--width", "must be >= 1, got -3"),
        (["--epochs", "two"], "--epochs", "expected an integer, got 'two'"),
        (["--lr", "0"], "--lr", "must be > 0"),
        (["--activation", "relux"], "--activation", "invalid choice"),
        (["--dataset", "mnist"], "--dataset", "invalid choice"),
        (["--schemes", " , "], "--schemes", "no scheme given"),
    ],
)
def test_bad_arguments_are_rejected_naming_the_flag(argv, flag, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and message in err, err


def test_unknown_scheme_error_is_kiz_get_s_with_closest_alias(capsys):
    with pytest.raises(ValueError) as from_get:
        kiz.get("zoo_hee")
    with pytest.raises(SystemExit):
        cli.main(["compare", "--schemes", "zoo_he,zoo_hee"])
    err = capsys.readouterr().err
    assert "argument --schemes: " in err
    assert str(from_get.value) in err  # the registry's own message, closest aliases included
    assert "'zoo_he'" in err


def test_compare_trains_each_scheme_and_writes_one_run_per_scheme(tmp_path, capsys, events):
    code = cli.main(
        [
            "compare",
            "--schemes",
            "zoo_he,zoo_small",
            "--depth",
            "8",
            "--epochs",
            "1",
            "--logdir",
            str(tmp_path),
            "--no-progress",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    rows = _table_rows(out)
    assert list(rows) == ["zoo_he", "zoo_small"]
    he_factor, small_factor = (float(rows[s][4].lstrip("x")) for s in ("zoo_he", "zoo_small"))
    # He keeps |dL/dh| level across 8 ReLU layers (x0.9-1.1 per layer); 0.01*N(0,1)
    # shrinks it by sqrt(32/2) * 0.01 = 0.04 per layer.
    assert 0.85 < he_factor < 1.15 and rows["zoo_he"][5].endswith("signal level")
    assert small_factor < 0.1 and rows["zoo_small"][5] == "stalled, signal vanishing"
    assert f"tensorboard --logdir {tmp_path}" in out
    assert plain(TENSORBOARD_ADVICE) in " ".join(out.split())  # the docs' paragraph, wrapped
    # The depth heatmap the closing lines point to is really there, with every tag.
    _check_runs(events, tmp_path, ("zoo_he", "zoo_small"), 8)


# What each demo row must read (the thresholds are keras_initzoo.experiments.table's).
DEMO_READINGS = {
    "zoo_he": "trains, signal level",
    "zoo_glorot": "lags, signal vanishing",
    "zoo_small": "stalled, signal vanishing",
    "zoo_large": "exploded, signal exploding",
    "zoo_zeros": "stalled, signal none",
}


def check_demo_table(rows: dict[str, list[str]], he_accuracy: float) -> None:
    """The demo's claims, on its printed table (tests/test_demo_lesson.py: on its results)."""
    assert {name: cells[5] for name, cells in rows.items()} == DEMO_READINGS, rows
    loss = {name: float(cells[0]) for name, cells in rows.items()}
    factor = {name: float(cells[4].lstrip("x")) for name, cells in rows.items() if cells[4] != "-"}
    assert float(rows["zoo_he"][1]) >= he_accuracy  # 4 classes: chance is 0.25
    assert 0.9 <= factor["zoo_he"] <= 1.1  # level across depth: ~1 per layer
    assert 0.6 <= factor["zoo_glorot"] <= 0.8 and loss["zoo_glorot"] >= 1.5 * loss["zoo_he"]
    for stalled in ("zoo_small", "zoo_zeros"):
        assert math.isclose(loss[stalled], math.log(4), abs_tol=0.01)  # stuck at chance
    assert factor["zoo_small"] < 0.1 and rows["zoo_zeros"][4] == "-"
    assert rows["zoo_large"][0] == "nan" and factor["zoo_large"] > 10  # exploded


@pytest.mark.slow
def test_demo_shows_the_lesson(tmp_path, events):
    """The full demo on this backend (the suite runs on all three), seed 0: every claim of
    its text holds on its printed numbers (measured: He accuracy 0.955-0.973, x0.97 per
    layer; Glorot x0.69, loss 5-11x He's). Control: the table before (weight-gradient ratio
    L1/L12) read 0.213 for He; as a per-layer factor, 0.87, which the bounds refuse."""
    # Its wall time (about 15 s on 2 cores) is reported in the README, not asserted:
    # timings belong to benchmarks, not to tests.
    done = subprocess.run(
        [sys.executable, "-m", "keras_initzoo_cli", "demo", "--logdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _table_rows(done.stdout)
    assert list(rows) == list(cli.DEMO_SCHEMES)
    check_demo_table(rows, he_accuracy=0.9)
    assert re.search(r"^elapsed: \d+\.\d s$", done.stdout, re.M)
    # Then why, and the docs' TensorBoard paragraph with this run's folder.
    guide = " ".join(done.stdout.split("elapsed:", 1)[1].split())
    assert "So He keeps the gradient level and trains; Glorot" in guide
    assert f"tensorboard --logdir {tmp_path}" in guide and plain(TENSORBOARD_ADVICE) in guide
    # zoo_large's non-finite gradients: one line each, no source file or line of the package.
    warned = [line for line in done.stderr.splitlines() if "non-finite gradient" in line]
    assert warned and all(line.startswith("initzoo demo: warning: ") for line in warned)
    assert ".py:" not in done.stderr and "_report_nonfinite" not in done.stderr, done.stderr
    for scheme in cli.DEMO_SCHEMES:
        assert os.path.isdir(tmp_path / scheme)
        assert _has_depth_image(events, tmp_path / scheme)
        assert {"grad_norm/global", "grad_norm/dense_01", "loss/train"} <= _tags(
            events, tmp_path / scheme
        )


# Runs the command line and reports, at exit, whether TensorFlow got loaded.
TENSORFLOW_PROBE = """
import atexit, sys
def report():
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")
    sys.stderr.write("TENSORFLOW=" + ",".join(loaded) + "\\n")
atexit.register(report)
from keras_initzoo_cli import main
sys.exit(main(sys.argv[1:]))
"""


def _check_runs(events, logdir, schemes, depth: int) -> None:
    """One run per scheme with the tags and the depth image a TensorFlow run has."""
    for scheme in schemes:
        assert _has_depth_image(events, logdir / scheme), scheme
        tags = _tags(events, logdir / scheme)
        expected = {
            "grad_norm/global",
            "grad_norm/output",
            "loss/train",
            "loss/validation",
            "accuracy/train",
            "accuracy/validation",
            "init_by_depth/grad_norm",
            "init_by_depth/backprop_norm",
            "init_by_depth/activation_std",
        } | {f"grad_norm/dense_{i:02d}" for i in range(1, depth + 1)}
        assert expected <= tags, (scheme, expected - tags)


@pytest.mark.slow
@pytest.mark.drives_backends(reason="runs the CLI in a subprocess per backend")
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_demo_and_compare_run_on_every_backend(backend, tmp_path, events):
    """``compare`` on JAX and PyTorch: the table, the runs, no TensorFlow (``demo`` runs
    the same code; its claims are checked on every backend by test_demo_shows_the_lesson
    and tests/test_demo_lesson.py)."""
    from test_backends import backend_env, require_backend

    require_backend(backend)
    for command, trained, depth in (
        (
            ["compare", "--schemes", "zoo_he,zoo_small", "--depth", "3", "--epochs", "1"],
            ("zoo_he", "zoo_small"),
            3,
        ),
    ):
        logdir = tmp_path / command[0]
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                TENSORFLOW_PROBE,
                *command,
                "--no-progress",
                "--logdir",
                str(logdir),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=backend_env(backend),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stderr.rsplit("TENSORFLOW=", 1)[1].strip() == "", "TensorFlow got imported"
        rows = _table_rows(done.stdout)
        assert list(rows) == list(trained), done.stdout
        for cells in rows.values():  # numbers (nan where a scheme exploded), then words
            assert all(re.fullmatch(r"x?(nan|inf|[-+\d.e]+)|-", cell) for cell in cells[:5])
            assert re.fullmatch(r"(trains|lags|stalled|exploded), signal \w+", cells[5])
        header = next(line for line in done.stdout.splitlines() if line.startswith("scheme"))
        assert re.split(r"\s{2,}", header) == [
            "scheme",
            "final loss",
            "test acc",
            f"|dL/dh| L{depth}",
            "|dL/dh| L1",
            "per layer",
            "reading",
        ]
        _check_runs(events, logdir, trained, depth)


def test_a_missing_backend_stops_with_the_way_out(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a)
    )
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "Keras is set to the 'jax' backend" in err
    assert "pip install 'keras_initzoo[jax]'" in err and "KERAS_BACKEND=torch" in err


# ---------------------------------------------------------------- coord-check

COORD_BUILDER = '''
"""Builders for `initzoo coord-check` (tests/test_cli.py)."""
import keras

from keras_initzoo.mup._depth_transfer import residual_mlp


def build(width):
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(width, activation="relu", name="hidden_1"),
            keras.layers.Dense(width, activation="relu", name="hidden_2"),
            keras.layers.Dense(3, name="readout"),
        ],
        name="mlp",
    )


def blocks(width, depth):
    return residual_mlp(width, depth, inputs=8)


def not_a_model(width):
    return keras.layers.Dense(width)


SIZE = 3
'''


@pytest.fixture
def builder_module(tmp_path, monkeypatch):
    """A module of builders on ``sys.path``, as a user's file next to them would be."""
    name = "coord_builders"
    (tmp_path / f"{name}.py").write_text(COORD_BUILDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_coord_check_command_prints_the_library_s_check(builder_module, tmp_path, capsys, scalars):
    import importlib

    import keras
    import numpy as np

    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 8)).astype("float32"), rng.integers(0, 3, 32)
    np.savez(tmp_path / "batch.npz", x=x, y=y)
    options = ["--widths", "16,64", "--steps", "1", "--seeds", "1", "--zero-readout"]
    # An integer seed gives the next of its streams on each use; clear_session
    # restarts them, so the command and the library draw the same kernels.
    keras.backend.clear_session()
    code = cli.main(
        [
            "coord-check",
            f"{builder_module}:build",
            *options,
            *("--data", str(tmp_path / "batch.npz")),
            *("--plot", str(tmp_path / "coord.png")),
            *("--logdir", str(tmp_path / "runs")),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    build = importlib.import_module(builder_module).build
    keras.backend.clear_session()
    expected = kiz.mup.coord_check(build, [16, 64], x, y, steps=1, seeds=1, zero_readout=True)
    assert str(expected) in out  # the same options and seeds: the same table and verdict
    assert (tmp_path / "coord.png").stat().st_size > 0
    logged = scalars(tmp_path / "runs" / "width_64")
    assert sorted(logged) == ["coord/hidden_1", "coord/hidden_2", "coord/readout"]
    assert f"tensorboard --logdir {tmp_path / 'runs'}" in out


def test_coord_check_command_generates_a_batch_without_data(builder_module, capsys):
    code = cli.main(
        [
            "coord-check",
            f"{builder_module}:build",
            *("--widths", "16,64", "--steps", "1", "--seeds", "1"),
            *("--parametrization", "standard", "--optimizer", "sgd", "--lr", "0.05"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "coordinate check: standard, sgd at 0.05" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == ["readout"]]
    assert [row[1] for row in rows] == ["1", "2"]  # t = 1 and after the one step
    assert all(float(value) > 0 for row in rows for value in row[2:])  # N(0, 1) inputs
    assert re.search(r"^verdict: (stable|blows up|vanishes)", out, re.MULTILINE), out


def test_coord_check_command_across_depth_takes_the_depth_rule(builder_module, tmp_path, capsys):
    import importlib

    import keras
    import numpy as np

    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 8)).astype("float32"), rng.integers(0, 3, 32)
    np.savez(tmp_path / "batch.npz", x=x, y=y)
    argv = ["coord-check", f"{builder_module}:blocks", "--widths", "16,32", "--depths", "2,8"]
    argv += ["--steps", "1", "--seeds", "1", "--data", str(tmp_path / "batch.npz")]
    keras.backend.clear_session()
    code = cli.main([*argv, "--depth-rule", "depth_mup"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("coordinate check across depth: depth_mup"), out
    build = importlib.import_module(builder_module).blocks
    keras.backend.clear_session()
    expected = kiz.mup.coord_check(
        build, [16, 32], x, y, depths=[2, 8], depth="depth_mup", steps=1, seeds=1
    )
    assert str(expected) in out  # the same options and batch: the same table and verdict
    # the default is CompleteP; "none" is muP for width only
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.startswith("coordinate check across depth: completep")
    assert cli.main([*argv, "--depth-rule", "none"]) == 0
    assert "width-only muP" in capsys.readouterr().out.splitlines()[0]
    # a rule without depths is refused, not ignored
    assert cli.main(["coord-check", f"{builder_module}:build", "--depth-rule", "depth_mup"]) == 2
    assert "argument --depth-rule: needs --depths" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["coord_builders"], "argument builder: expected MODULE:FUNCTION"),
        (["coord_builders:build:x"], "argument builder: expected MODULE:FUNCTION"),
        (["coord_builders:build", "--widths", "64,64"], "argument --widths: expected at least"),
        (["coord_builders:build", "--steps", "-1"], "argument --steps: must be >= 0"),
    ],
)
def test_coord_check_command_rejects_bad_arguments_naming_them(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["coord-check", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no_such_module_here:build"], "cannot import module 'no_such_module_here'"),
        (["coord_builders:missing"], "coord_builders has no 'missing'"),
        (["coord_builders:SIZE"], "is not a function build(width) (it is of type int)"),
        (["coord_builders:not_a_model"], "build(128) returned a Dense, not a keras.Model"),
        (["coord_builders:build", "--loss", "msee"], "`loss` must be a Keras loss identifier"),
        (["coord_builders:build", "--data", "none.npz"], "no such data file: none.npz"),
    ],
)
def test_coord_check_command_explains_what_it_cannot_run(builder_module, argv, message, capsys):
    assert cli.main(["coord-check", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("initzoo coord-check: error: ") and message in err, err


# ---------------------------------------------------------------- output a person reads


def test_the_tensorboard_advice_is_the_documentation_s_paragraph():
    """One paragraph everywhere: the CLI prints docs/snippets/tensorboard-advice.md's words."""
    from pathlib import Path

    snippet = Path(__file__).resolve().parent.parent / "docs" / "snippets"
    assert TENSORBOARD_ADVICE == (snippet / "tensorboard-advice.md").read_text().strip()
    printed = " ".join(commands_advice("runs/x").split())
    assert plain(TENSORBOARD_ADVICE) in printed and "`" not in printed and "**" not in printed
    assert printed.startswith("View the runs: tensorboard --logdir runs/x ")


def commands_advice(logdir: str) -> str:
    from keras_initzoo_cli.commands import tensorboard_advice

    return tensorboard_advice(logdir)


@pytest.mark.parametrize(
    ("argv", "module", "option"),
    [
        (["compare", "--dataset", "digits"], "sklearn", "--dataset digits needs scikit-learn"),
        (["report", "MODEL", "--png", "x.png"], "matplotlib", "--png needs matplotlib"),
        (["coord-check", "coord_builders:build", "--plot", "x.png"], "matplotlib", "--plot needs"),
    ],
)
def test_a_missing_optional_package_is_one_line_naming_the_extra(
    argv, module, option, monkeypatch, capsys, tmp_path
):
    """Before any work starts, one line on stderr with the pip command, no traceback.
    Control: before, compare --dataset digits trained nothing but printed the ImportError's
    traceback (load_digits raised it from inside run_comparison)."""
    import importlib.util

    if argv[0] == "report":
        (tmp_path / "m.keras").write_bytes(b"")
        argv = [a.replace("MODEL", str(tmp_path / "m.keras")) for a in argv]
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and option in lines[0], captured.err
    assert lines[0].startswith(f"initzoo {argv[0]}: error: ")
    assert lines[0].endswith("run: python -m pip install 'keras_initzoo[examples]'")


def test_progress_bar_redraws_only_on_a_terminal(monkeypatch):
    """A terminal gets Keras' live bar (verbose=1: ANSI colours, redrawn in place); a pipe or
    a file one plain line at the end (verbose=2). Control: Keras alone draws verbose=1 on
    any POSIX system ("posix" in sys.modules), terminal or not."""
    import io

    from keras_initzoo.experiments import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, verbose in ((Terminal(), 1), (io.StringIO(), 2)):
        monkeypatch.setattr(sys, "stdout", stream)
        bar = progress_bar(2)
        assert bar.verbose == verbose
        bar.update(1, values=[("loss", 1.0)])
        bar.update(2, values=[("loss", 0.5)])
        written = stream.getvalue()
        assert ("\x1b[" in written) == (verbose == 1), repr(written)
        assert written.rstrip().endswith("loss: 0.5000")


COORD_UNNAMED = """
import keras


def build(width):
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
"""


def test_coord_check_names_unnamed_layers_as_one_build_would(tmp_path, monkeypatch, capsys):
    """A builder that leaves Keras to name its layers: the rows read dense, dense_1, dense_2,
    as in one build, whatever was built before. Control: without restarting Keras' names
    the rows read dense_6, dense_7, dense_8 (the command's own sample build, then the base)."""
    import keras

    (tmp_path / "coord_unnamed.py").write_text(COORD_UNNAMED)
    monkeypatch.syspath_prepend(str(tmp_path))
    keras.layers.Dense(2)  # names already taken before the command: no effect on its rows
    argv = ["coord-check", "coord_unnamed:build", "--widths", "8,16", "--steps", "1"]
    assert cli.main([*argv, "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    layers = [line.split()[0] for line in out.splitlines() if line.startswith("dense")]
    assert list(dict.fromkeys(layers)) == ["dense", "dense_1", "dense_2"], out
    sys.modules.pop("coord_unnamed", None)


def test_tensorflow_retracing_warnings_are_dropped_and_others_kept(caplog):
    """The commands build a model per width and seed, and TensorFlow warns that Keras' step
    function retraces; the command line drops that one message from the ``tensorflow``
    logger. Control: without the filter the record reaches the handler (the first
    assertion below, before drop_retracing_warnings)."""
    import logging

    logger = logging.getLogger("tensorflow")
    message = "5 out of the last 13 calls to <function one_step_on_data> " + quiet.RETRACING
    saved = list(logger.filters)
    try:
        logger.filters = [f for f in logger.filters if not isinstance(f, quiet._DropRetracing)]
        with caplog.at_level(logging.WARNING, logger="tensorflow"):
            logger.warning(message)
            assert quiet.RETRACING in caplog.text  # control: it shows without the filter
            caplog.clear()
            quiet.drop_retracing_warnings()
            quiet.drop_retracing_warnings()  # once is enough: no second filter
            logger.warning(message)
            logger.warning("a real TensorFlow warning")
        assert quiet.RETRACING not in caplog.text and "a real TensorFlow warning" in caplog.text
        assert sum(isinstance(f, quiet._DropRetracing) for f in logger.filters) == 1
    finally:
        logger.filters = saved

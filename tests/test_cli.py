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
    """``{scheme: [final loss, test acc, |g| L1, |g| Ld, ratio]}`` from a printed table."""
    return {
        cells[0]: cells[1:]
        for line in output.splitlines()
        if (cells := line.split()) and cells[0].startswith("zoo_") and len(cells) == 6
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
    he_ratio, small_ratio = float(rows["zoo_he"][4]), float(rows["zoo_small"][4])
    # He keeps the weight-gradient norm within about an order of magnitude across 8 ReLU
    # layers (measured 0.2-0.5); 0.01*N(0,1) shrinks it by ~0.04 per layer, so ~1e-10.
    assert 0.05 < he_ratio < 20
    assert small_ratio < 1e-5
    assert f"tensorboard --logdir {tmp_path}" in out
    assert "grad_norm_by_depth" in out
    # The depth heatmap the closing lines point to is really there, with every tag.
    _check_runs(events, tmp_path, ("zoo_he", "zoo_small"), 8)


@pytest.mark.slow
def test_demo_shows_the_lesson(tmp_path, events):
    # Its wall time (about 15 s on 2 cores) is reported in the README, not asserted:
    # timings belong to benchmarks, not to tests.
    done = subprocess.run(
        [sys.executable, "-m", "keras_initzoo", "demo", "--logdir", str(tmp_path), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _table_rows(done.stdout)
    assert list(rows) == list(cli.DEMO_SCHEMES)
    assert float(rows["zoo_he"][1]) > 0.8  # 4 classes: chance is 0.25
    for dead in ("zoo_small", "zoo_zeros"):
        assert float(rows[dead][1]) < 0.4
        assert math.isclose(float(rows[dead][0]), math.log(4), abs_tol=0.02)  # stuck at chance
    assert rows["zoo_large"][0] == "nan"  # exploded
    assert float(rows["zoo_small"][4]) < 1e-6 < float(rows["zoo_he"][4])
    assert re.search(r"^elapsed: \d+\.\d s$", done.stdout, re.M)
    # It ends by saying where the depth heatmap is and what it shows.
    guide = done.stdout.split("elapsed:", 1)[1]
    assert f"tensorboard --logdir {tmp_path}" in guide
    assert "IMAGES tab, grad_norm_by_depth" in guide and "CUSTOM SCALARS" in guide
    assert "zoo_he:" in guide and "zoo_small:" in guide and "vanishes" in guide
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
    """``demo --quick`` and ``compare`` on JAX and PyTorch: the table, the runs, no TensorFlow."""
    from test_backends import backend_env, require_backend

    require_backend(backend)
    for command, trained, depth in (
        (["demo", "--quick"], cli.DEMO_SCHEMES, cli.DEMO_SETTINGS["depth"]),
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
        for cells in rows.values():  # loss and accuracy numbers (nan where a scheme exploded)
            assert all(re.fullmatch(r"nan|inf|[-+\d.e]+", cell) for cell in cells), cells
        header = next(line for line in done.stdout.splitlines() if line.startswith("scheme"))
        assert header.split() == [
            "scheme",
            "final",
            "loss",
            "test",
            "acc",
            "|g|",
            "L1",
            "@init",
            "|g|",
            f"L{depth}",
            "@init",
            "ratio",
            f"L1/L{depth}",
        ]
        _check_runs(events, logdir, trained, depth)
        if command[0] == "demo":
            assert "IMAGES tab, grad_norm_by_depth" in done.stdout


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

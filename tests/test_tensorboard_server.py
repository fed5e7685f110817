"""The real TensorBoard server, on 127.0.0.1, serves what GradientNormLogger wrote.

Two short real fits (zoo_he and zoo_small) write a log folder through the experiment
engine (GradientNormLogger + epoch scalars); the installed ``tensorboard`` is started
against it, and its HTTP data API must return the same tags, steps and values that
TensorBoard's own EventAccumulator reads from the files, plus the custom-scalars layout.
"""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import json_format
from tb_server import HOST, TensorBoardServer, scalar_tags_ready  # tools/, see conftest.py
from tensorboard.plugins.custom_scalar import layout_pb2

from keras_initzoo.experiments import ExperimentConfig, run_comparison

pytestmark = pytest.mark.slow

SCHEMES = ("zoo_he", "zoo_small")
DEPTH = 4


def _logged(acc) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a run as the files hold it: v1 scalars and v2 float tensors."""
    series = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    for tag in acc.Tags()["tensors"]:
        events = acc.Tensors(tag)
        if events[0].tensor_proto.dtype == 1 and not events[0].tensor_proto.tensor_shape.dim:
            series[tag] = [
                (e.step, float(np.frombuffer(e.tensor_proto.tensor_content, "<f4")[0]))
                for e in events
            ]
    return series


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tb_logs")
    config = ExperimentConfig(depth=DEPTH, width=16, epochs=2, n_samples=512, seed=1)
    run_comparison(SCHEMES, config, logdir=str(path))
    return path


@pytest.fixture(scope="module")
def expected(logdir):
    from conftest import load_events  # tests/ is on sys.path (pytest rootdir-relative import)

    return {run: load_events(logdir / run) for run in SCHEMES}


@pytest.fixture(scope="module")
def server(logdir, expected):
    must_list = {run: {"grad_norm/global", "loss/train"} for run in SCHEMES}
    tb = TensorBoardServer(str(logdir))
    try:
        tb.start(timeout=120, ready=scalar_tags_ready(must_list))
        yield tb
    finally:
        tb.stop()  # always: a test failure must not leave a server behind
    assert tb.process.poll() is not None


def test_server_listens_on_loopback_only(server):
    assert server.url.startswith(f"http://{HOST}:")
    assert "--host" in server.process.args and HOST in server.process.args


def test_runs_and_plugins_are_served(server):
    assert sorted(server.get_json("/data/runs")) == sorted(SCHEMES)
    plugins = server.get_json("/data/plugins_listing")
    assert plugins["scalars"]["enabled"] is True
    assert plugins["custom_scalars"]["enabled"] is True


def test_scalar_tags_match_the_event_files(server, expected):
    served = server.get_json("/data/plugin/scalars/tags")
    for run, acc in expected.items():
        logged = set(_logged(acc))
        layer_tags = {f"grad_norm/dense_{i:02d}" for i in range(1, DEPTH + 1)}
        assert layer_tags | {"grad_norm/global", "grad_norm/output"} <= logged
        assert logged <= set(served[run]), logged - set(served[run])


def test_scalar_values_match_the_event_files(server, expected):
    for run, acc in expected.items():
        for tag, points in _logged(acc).items():
            if not tag.startswith(("grad_norm/", "loss/", "init_by_depth/")):
                continue
            served = server.get_json("/data/plugin/scalars/scalars", {"run": run, "tag": tag})
            assert [step for _, step, _ in served] == [step for step, _ in points], (run, tag)
            # Both sides hold the same float32; the server sends it as a double.
            np.testing.assert_allclose(
                [v for _, _, v in served], [v for _, v in points], rtol=1e-6, err_msg=f"{run} {tag}"
            )


def test_gradient_norms_show_the_lesson_through_the_server(server):
    def first_value(run: str, tag: str) -> float:
        return server.get_json("/data/plugin/scalars/scalars", {"run": run, "tag": tag})[0][2]

    # Step 1 is the gradient at initialization: He's first layer gets a usable gradient,
    # 0.01*N(0,1)'s has all but vanished (at init: 1.3 vs 5e-7 measured on a 256 batch).
    he = first_value("zoo_he", "grad_norm/dense_01")
    small = first_value("zoo_small", "grad_norm/dense_01")
    assert he > 1e-2 and small < 1e-3 * he


def test_custom_scalars_layout_is_the_logged_one(server, expected):
    served = server.get_json("/data/plugin/custom_scalars/layout")
    logged = layout_pb2.Layout.FromString(
        expected["zoo_he"].Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    )
    assert json_format.ParseDict(served, layout_pb2.Layout()) == logged
    tags = [
        t
        for c in served["category"]
        for chart in c["chart"]
        for t in chart.get("multiline", {}).get("tag", [])
    ]
    # Multiline-chart tags are regexes: GradientNormLogger anchors each one (^...$).
    assert any(t.lstrip("^").startswith("grad_norm/") for t in tags)

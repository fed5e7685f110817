"""tools/screenshot_dashboard.py renders the real TensorBoard page in headless Chromium.

TensorBoard's own server (on 127.0.0.1) serves two short real runs (zoo_he, zoo_small)
to Debian's chromium; the checks read the screenshots' pixels: the Images view draws
GradientNormLogger's depth heatmaps, Custom Scalars its charts with lines, Time Series
its cards. A copy of the same runs without the heatmap and the gradient-norm scalars
is the control: its pages must score far below the same thresholds.

CI sets CI=true and installs chromium: there a missing browser fails the test, so the
browser check cannot silently drop out of CI. Elsewhere it skips, saying why.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from keras_initzoo.experiments import ExperimentConfig, run_comparison

CHROMIUM = "/usr/bin/chromium"
RUNS = ("zoo_he", "zoo_small")  # the legacy dashboards show runs in this (sorted) order
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module", autouse=True)
def chromium():
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(
                f"CI={os.environ['CI']}: the browser test must run in CI, but {CHROMIUM} "
                "is missing (apt-get install chromium)",
                pytrace=False,
            )
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def tool():
    import screenshot_dashboard  # tools/, on sys.path by conftest.py, beside tb_server

    return screenshot_dashboard


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs")
    config = ExperimentConfig(depth=6, width=16, epochs=1, n_samples=512)
    run_comparison(RUNS, config, logdir=str(path))
    return path


@pytest.fixture(scope="module")
def blank_logdir(logdir, tmp_path_factory):
    """The same runs without the depth heatmap and without the grad_norm/* scalars: the
    Images view has nothing to show, the custom-scalars charts (layout kept) no lines."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    path = tmp_path_factory.mktemp("blank_runs")
    for run in RUNS:
        for events in sorted(glob.glob(str(logdir / run / "events.out.tfevents.*"))):
            writer = EventFileWriter(str(path / run))
            for record in RawEventFileLoader(events).Load():
                event = event_pb2.Event.FromString(record)
                keep = [
                    value
                    for value in event.summary.value
                    if value.tag != "grad_norm_by_depth" and not value.tag.startswith("grad_norm/")
                ]
                del event.summary.value[:]
                event.summary.value.extend(keep)
                writer.add_event(event)
            writer.close()
    return path


@pytest.fixture(scope="module")
def servers(logdir, blank_logdir):
    """TensorBoard on the runs and on the control runs; the views of the runs not taken by
    the tool itself come from one server. Without TensorFlow: each starts in ~1 s, not ~10."""
    from tb_server import TensorBoardServer, scalar_tags_ready  # tools/, see conftest.py

    def ready(must_list: set[str]):
        scalars = scalar_tags_ready({run: must_list for run in RUNS})
        return lambda s: scalars(s) and bool(s.get_json("/data/plugin/custom_scalars/layout"))

    runs = TensorBoardServer(str(logdir), tensorflow=False)
    blank = TensorBoardServer(str(blank_logdir), tensorflow=False)
    try:
        runs.start(timeout=120, ready=ready({"grad_norm/global"}))
        blank.start(timeout=120, ready=ready({"loss/train"}))
        yield runs, blank
    finally:
        runs.stop()  # always: a failure must not leave a server behind
        blank.stop()


def _saturation(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.int16)
    return image.max(axis=-1) - image.min(axis=-1)


def _spans(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the runs of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def test_timeseries_view_draws_the_charts(tool, servers, tmp_path):
    out = tmp_path / "dashboard.png"
    tool.capture(tool.view_url(servers[0].url, "timeseries"), str(out), "timeseries")

    image = tool.rgb_pixels(str(out))
    assert image.shape == (900, 1400, 3)
    # The three cards of the default tag filter (grad_norm/dense_01 and the two log10
    # depth profiles) have fixed places in TensorBoard 2.21's 1400x900 layout. Inside a
    # plot area the only strongly coloured pixels are the runs' lines: measured 530-740
    # per card for these two runs (1,100-3,100 for three), 0-150 for an empty or undrawn
    # card (WebGL lines that headless Chromium skipped before forceSVG).
    saturation = _saturation(image)
    plot_areas = {
        "grad_norm/dense_01": (slice(220, 455), slice(372, 700)),
        "log10_backprop_norm": (slice(220, 455), slice(795, 1120)),
        "log10_grad_norm": (slice(655, 900), slice(372, 700)),
    }
    for card, area in plot_areas.items():
        coloured = int((saturation[area] >= 64).sum())
        assert coloured > 300, f"card {card}: {coloured} coloured pixels, no lines drawn?"


def test_images_view_draws_the_depth_heatmaps(tool, logdir, tmp_path):
    """The whole tool, as the README's screenshot is made: its own server, its retries."""
    out = tmp_path / "depth_view.png"
    # 1400x900, not the README's 1100x450: these 7-row heatmaps are drawn taller.
    argv = ["--logdir", str(logdir), "--view", "images", "--size", "1400x900", "--out", str(out)]
    assert tool.main(argv) == 0

    image = tool.rgb_pixels(str(out))
    on_viridis = tool.viridis_mask(str(out))
    # Measured: 236,000 pixels within 12 (of 255) of the viridis curve when both heatmaps
    # are drawn, in 166 distinct colours (42 + 42 cells, two colour bars); 0 on the page
    # of the control runs below.
    assert on_viridis.sum() > 40000, f"{on_viridis.sum()} viridis pixels: no heatmap drawn?"
    distinct = len(np.unique(image[on_viridis], axis=0))
    assert distinct > 40, f"{distinct} viridis colours: not a heatmap with its colour bar"

    # Side by side: each run a wide heatmap (~300 px) and a narrow colour bar (~37 px),
    # separated by white; the wide column spans are the heatmaps, one per run.
    columns = on_viridis.sum(axis=0) > 50
    heatmaps = [(a, b) for a, b in _spans(columns) if b - a >= 100]
    assert len(heatmaps) == len(RUNS), f"heatmaps at columns {heatmaps}, want one per run"
    # zoo_small's gradient vanishes towards the input, and the first layer is the top
    # row: dark (purple, small norm) on top, bright (yellow, large) at the bottom.
    # Viridis grows brighter along its whole curve, so R+G+B orders the colours:
    # measured 185 in the top fifth of the rows, 477 in the bottom fifth.
    a, b = heatmaps[RUNS.index("zoo_small")]
    rows = np.flatnonzero(on_viridis[:, a:b].sum(axis=1) > (b - a) // 2)
    top, bottom = rows[: len(rows) // 5], rows[-(len(rows) // 5) :]
    brightness = image[:, a:b].astype(int).sum(axis=-1)
    dark = brightness[top][on_viridis[top, a:b]].mean()
    bright = brightness[bottom][on_viridis[bottom, a:b]].mean()
    assert dark < bright - 150, f"zoo_small: top rows {dark:.0f}, bottom rows {bright:.0f}"


def test_custom_scalars_view_draws_the_charts(tool, servers, tmp_path):
    out = tmp_path / "custom_scalars.png"
    tool.capture(tool.view_url(servers[0].url, "custom_scalars"), str(out), "custom_scalars")

    # Measured: 8,300 line pixels for the two charts ("global gradient norm", "layers 1-7
    # of 7"); < 50 for the same charts of the control runs, which hold no data.
    lines = tool.line_pixels(str(out))
    assert lines > 2000, f"{lines} line pixels: charts not drawn?"
    # Both runs are drawn, in the legacy dashboards' first two run colours (measured
    # 3,500 zoo_he and 1,650 zoo_small pixels, 0 of either for the control runs); the
    # sidebar's checkboxes, in the same colours, are left out.
    main_pane = tool.rgb_pixels(str(out))[70:, 345:].astype(int)
    for run, colour in zip(RUNS, [(255, 112, 67), (0, 119, 187)], strict=True):
        pixels = int((np.abs(main_pane - colour).sum(axis=-1) <= 30).sum())
        assert pixels > 300, f"{run}: {pixels} pixels of its colour {colour}, no line?"


def test_views_without_the_data_score_low(tool, servers, tmp_path):
    """The control: the thresholds above sit far above what undrawn views score."""
    blank = servers[1]
    images, charts = tmp_path / "images.png", tmp_path / "custom_scalars.png"
    tool.chromium_screenshot(tool.view_url(blank.url, "images"), str(images))
    tool.chromium_screenshot(tool.view_url(blank.url, "custom_scalars"), str(charts))
    viridis, lines = tool.viridis_pixels(str(images)), tool.line_pixels(str(charts))
    assert viridis < 1000, f"{viridis} viridis pixels on an Images page without images"
    assert lines < 500, f"{lines} line pixels on custom-scalars charts without data"
    # The tool's own retry check would not take them for drawn either.
    assert viridis < tool.MIN_VIRIDIS and lines < tool.MIN_LINES


def test_missing_run_is_named(tool, tmp_path):
    with pytest.raises(SystemExit, match="--runs: no run folder zoo_he"):
        tool.copy_runs(str(tmp_path), ["zoo_he"], str(tmp_path / "copy"))


# -- every monitor at 150 layers -------------------------------------------------------------
DEEP = 150


@pytest.fixture(scope="module")
def deep_logdir(tmp_path_factory):
    """A 150-layer ReLU MLP (He init, so the signal lives through all of it) with a logits
    head, 4 Adam steps, every monitor on."""
    import keras

    import keras_initzoo as kiz

    path = tmp_path_factory.mktemp("deep") / "deep"
    keras.utils.set_random_seed(0)
    layers = [
        keras.layers.Dense(32, "relu", kernel_initializer="zoo_he", name=f"d{i:03d}")
        for i in range(DEEP)
    ]
    model = keras.Sequential([keras.Input((8,)), *layers, keras.layers.Dense(4, name="head")])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, 64)]
    logger = kiz.GradientNormLogger(
        str(path),
        activation_stats=True,
        output_logits=True,
        optimizer_stats=True,
        spectral_updates=True,
        detect_spikes=True,
    )
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[logger])
    return path.parent


def test_every_monitor_at_150_layers_renders(tool, deep_logdir, tmp_path):
    """The custom-scalars layout with every monitor's categories, served by TensorBoard:
    each chart at most LINES_PER_CHART lines, every category's tags present, charts drawn
    with lines in Chromium; the Images view draws both depth heatmaps (gradient norm and
    output RMS), 150 rows each. The thresholds are the ones the control runs of
    test_views_without_the_data_score_low fall far below."""
    from tb_server import TensorBoardServer, scalar_tags_ready

    from keras_initzoo.callbacks.views import LINES_PER_CHART

    server = TensorBoardServer(str(deep_logdir), tensorflow=False)
    try:
        server.start(timeout=120, ready=scalar_tags_ready({"deep": {"grad_norm/global"}}))
        layout = server.get_json("/data/plugin/custom_scalars/layout")
        categories = {c["title"]: c["chart"] for c in layout["category"]}
        for prefix in ("act_rms", "act_dead", "update_rms", "adam_eps_share", "update_spectral"):
            tags = [
                t
                for charts in categories.values()
                for chart in charts
                for t in chart["multiline"]["tag"]
                if t.startswith(f"^{prefix}/")
            ]
            assert len(tags) >= DEEP, (prefix, len(tags), sorted(categories))
        widest = max(len(c["multiline"]["tag"]) for cs in categories.values() for c in cs)
        assert widest <= LINES_PER_CHART
        charts = tmp_path / "custom_scalars.png"
        tool.capture(tool.view_url(server.url, "custom_scalars"), str(charts), "custom_scalars")
        assert tool.line_pixels(str(charts)) > tool.MIN_LINES
        for tag in ("grad_norm_by_depth", "act_rms_by_depth"):
            images = tmp_path / f"{tag}.png"
            tool.capture(tool.view_url(server.url, "images", f"^{tag}$"), str(images), "images")
            on_viridis = tool.viridis_mask(str(images))
            assert on_viridis.sum() > tool.MIN_VIRIDIS, tag
            # a heatmap of 151 layers in many shades, not one flat colour (a dead signal)
            shades = len(np.unique(tool.rgb_pixels(str(images))[on_viridis], axis=0))
            assert shades > 40, (tag, shades)
    finally:
        server.stop()

"""tools/screenshot_dashboard.py renders the real TensorBoard page in headless Chromium."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from keras_initzoo.experiments import ExperimentConfig, run_comparison

CHROMIUM = "/usr/bin/chromium"
TOOL = Path(__file__).resolve().parent.parent / "tools" / "screenshot_dashboard.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


def _tool():
    spec = importlib.util.spec_from_file_location("screenshot_dashboard", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshot_shows_drawn_charts(tmp_path):
    import matplotlib.image as mpimg

    logdir = tmp_path / "runs"
    config = ExperimentConfig(depth=6, width=16, epochs=1, n_samples=512)
    run_comparison(("zoo_he", "zoo_glorot", "zoo_small"), config, logdir=str(logdir))
    out = tmp_path / "dashboard.png"
    assert _tool().main(["--logdir", str(logdir), "--out", str(out)]) == 0

    image = mpimg.imread(out)[..., :3]
    assert image.shape == (900, 1400, 3)
    # The three cards of the default tag filter (grad_norm/dense_01 and the two log10
    # depth profiles) have fixed places in TensorBoard 2.21's 1400x900 layout. Inside a
    # plot area the only strongly coloured pixels are the runs' lines: measured 1,100-
    # 3,100 per card when drawn, 0-150 for an empty or undrawn card (WebGL lines that
    # headless Chromium skipped before forceSVG).
    saturation = image.max(axis=-1) - image.min(axis=-1)
    plot_areas = {
        "grad_norm/dense_01": (slice(220, 455), slice(372, 700)),
        "log10_backprop_norm": (slice(220, 455), slice(795, 1120)),
        "log10_grad_norm": (slice(655, 900), slice(372, 700)),
    }
    for card, area in plot_areas.items():
        coloured = int((saturation[area] > 0.25).sum())
        assert coloured > 400, f"card {card}: {coloured} coloured pixels, no lines drawn?"


def test_missing_run_is_named(tmp_path):
    with pytest.raises(SystemExit, match="--runs: no run folder zoo_he"):
        _tool().copy_runs(str(tmp_path), ["zoo_he"], str(tmp_path / "copy"))

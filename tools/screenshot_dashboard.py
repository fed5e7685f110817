"""Screenshot the TensorBoard dashboard for the README, with headless Chromium.

Starts the installed TensorBoard on 127.0.0.1 against a copy of the chosen runs,
loads one of its views in Debian's chromium (``apt-get install chromium``) and
saves a PNG once the view is drawn (checked on the PNG itself, else retried):

- ``timeseries`` (default): the per-layer gradient norms and the log10 depth
  profiles of zoo_he, zoo_glorot and zoo_small (zoo_large's 1e19 gradients would
  flatten every other line on TensorBoard's linear axes);
- ``images``: the ``grad_norm_by_depth`` heatmaps of zoo_he and zoo_small side by side;
- ``custom_scalars``: GradientNormLogger's layout, the layers 8 to a chart.

    initzoo demo --logdir runs/demo
    python tools/screenshot_dashboard.py --logdir runs/demo                # dashboard.png
    python tools/screenshot_dashboard.py --logdir runs/demo --view images  # depth_view.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tb_server import TensorBoardServer, scalar_tags_ready  # tools/tb_server.py, beside this

from keras_initzoo.callbacks.views import colour  # the heatmap's palette

CHROMIUM = "/usr/bin/chromium"
ICON_BLUE = (33, 150, 243)  # the legacy dashboards' icons and links, not a run's colour
DEPTH_TAG = "grad_norm_by_depth"  # GradientNormLogger's heatmap (keras_initzoo/callbacks/views.py)
# Time Series: a blank chart area has < 200; the three cards drawn 2,180 (two test runs)
# or 6,175 (the demo's three runs).
MIN_COLOURED = 1000
# Measured on TensorBoard 2.21 pages (tests/test_dashboard.py checks the same margins):
# the demo's two heatmaps (zoo_he, zoo_small) put 81,000 pixels on the viridis curve, the
# 6-layer test runs' 236,000; the Images page of runs without the image tag has 0, the
# time-series and custom-scalars pages < 100 (a few line pixels that happen to be near it).
MIN_VIRIDIS = 10000
# Drawn custom-scalars charts: 55,000 line pixels (demo, 3 runs) or 8,300 (2 test runs,
# 2 charts); the same charts with no data in them < 50, a page without a layout 0.
MIN_LINES = 2000
# The view's URL after the server's address. smoothing 0 shows the raw values; forceSVG
# because headless Chromium without a GPU draws no WebGL lines in the time-series view.
# The Images and Custom Scalars dashboards are TensorBoard's older ones, which keep their
# settings after the "#"; Images gets no tag filter by default, since a filter shows the
# matching tags twice (once under "Tags matching", once in their own group).
TIMESERIES = "?darkMode=false&forceSVG=true&smoothing=0&tagFilter={tag_filter}#timeseries"
IMAGES = "?darkMode=false#images&tagFilter={tag_filter}"
CUSTOM_SCALARS = "?darkMode=false#custom_scalars&_smoothingWeight=0"


def rgb_pixels(png: str) -> np.ndarray:
    """The PNG's pixels as ``uint8`` RGB, ``(height, width, 3)``."""
    import matplotlib.image as mpimg

    image = mpimg.imread(png)[..., :3]
    if image.dtype != np.uint8:
        image = (image * 255).round().astype(np.uint8)
    return image


def coloured_pixels(png: str) -> int:
    """Strongly coloured pixels in the chart area (right of the run list, below the header).

    Drawn lines are coloured; an empty card is white and grey. A page caught before
    its charts rendered scores near 0, a drawn one thousands.
    """
    image = rgb_pixels(png).astype(np.int16)
    saturation = image.max(axis=-1) - image.min(axis=-1)
    return int((saturation[150:, 290:1120] >= 64).sum())


def viridis_mask(png: str, tolerance: float = 12.0) -> np.ndarray:
    """``(height, width)`` booleans: pixels within ``tolerance`` (of 255) of the viridis curve.

    TensorBoard's own colours (orange header and sliders, run colours, greys) are
    far from it; only the heatmaps and their colour bars are on it.
    """
    image = rgb_pixels(png)
    # the heatmap's own palette, sampled finely; the browser blends neighbouring cells
    # when it scales the image, which stays near this curve
    curve = colour(np.linspace(0.0, 1.0, 257), 0.0, 1.0).astype(np.float64)
    # Distances for each distinct colour only: a page has a few thousand, not a million.
    image = image.astype(np.int32)
    packed = (image[..., 0] << 16) | (image[..., 1] << 8) | image[..., 2]
    colours, inverse = np.unique(packed.ravel(), return_inverse=True)
    rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1)
    distance = np.sqrt(((rgb[:, None, :] - curve[None]) ** 2).sum(-1)).min(axis=1)
    return (distance <= tolerance)[inverse].reshape(packed.shape)


def viridis_pixels(png: str) -> int:
    """Pixels on the heatmaps' viridis palette: tens of thousands when drawn, ~0 when not."""
    return int(viridis_mask(png).sum())


def line_pixels(png: str) -> int:
    """Strongly coloured pixels in a legacy dashboard's main pane (below the header, right
    of the settings and run list), but for TensorBoard's blue icons under each chart: the
    charts' lines and markers, thousands when drawn, ~0 for empty charts."""
    image = rgb_pixels(png)[70:, 345:].astype(np.int16)
    saturation = image.max(axis=-1) - image.min(axis=-1)
    icons = np.abs(image - ICON_BLUE).sum(axis=-1) <= 60
    return int(((saturation >= 64) & ~icons).sum())


@dataclass(frozen=True)
class View:
    query: str  # URL after the server's address, with {tag_filter}
    runs: str  # default --runs
    tag_filter: str  # default --tag-filter
    out: str  # default --out
    size: str  # default --size
    drawn: Callable[[str], int]  # how much of the view a PNG shows drawn
    min_drawn: int  # and how much is enough
    what: str  # for messages
    needs: str  # what the view waits for in every run, for messages


VIEWS = {
    "timeseries": View(
        TIMESERIES,
        "zoo_he,zoo_glorot,zoo_small",
        "log10_grad_norm|log10_backprop|grad_norm/dense_01",
        os.path.join("docs", "images", "dashboard.png"),
        "1400x900",
        coloured_pixels,
        MIN_COLOURED,
        "charts",
        "the scalar grad_norm/global",
    ),
    "images": View(
        IMAGES,
        "zoo_he,zoo_small",
        "",
        os.path.join("docs", "images", "depth_view.png"),
        # Wide enough for the two cards beside the run list, tall enough for the demo's
        # 13-row heatmaps: the README's picture without a blank lower half.
        "1100x450",
        viridis_pixels,
        MIN_VIRIDIS,
        "heatmaps",
        f"GradientNormLogger's {DEPTH_TAG} image and grad_norm/global",
    ),
    "custom_scalars": View(
        CUSTOM_SCALARS,
        "zoo_he,zoo_glorot,zoo_small",
        "",
        os.path.join("docs", "images", "custom_scalars.png"),
        "1400x900",
        line_pixels,
        MIN_LINES,
        "charts",
        "GradientNormLogger's custom-scalars layout and grad_norm/global",
    ),
}


def copy_runs(logdir: str, runs: Sequence[str], dest: str) -> list[str]:
    """Copy the named run folders of ``logdir`` to ``dest``; error naming any missing run."""
    missing = [r for r in runs if not os.path.isdir(os.path.join(logdir, r))]
    if missing:
        raise SystemExit(
            f"--runs: no run folder {', '.join(missing)} under --logdir {logdir} "
            f"(make them with: initzoo demo --logdir {logdir})"
        )
    for run in runs:
        shutil.copytree(os.path.join(logdir, run), os.path.join(dest, run))
    return list(runs)


def view_ready(view: str, runs: Sequence[str]) -> Callable[[TensorBoardServer], bool]:
    """A ``ready`` check: the server has loaded what ``view`` shows of every run.

    A run's events load in one pass, but the server answers during it: a page
    loaded too early would show the scalars without the heatmap or the layout.
    """
    scalars = scalar_tags_ready({run: {"grad_norm/global"} for run in runs})

    def ready(server: TensorBoardServer) -> bool:
        if not scalars(server):
            return False
        if view == "images":
            tags = server.get_json("/data/plugin/images/tags")
            return all(DEPTH_TAG in tags.get(run, {}) for run in runs)
        if view == "custom_scalars":
            return bool(server.get_json("/data/plugin/custom_scalars/layout"))
        return True

    return ready


def view_url(server_url: str, view: str, tag_filter: str | None = None) -> str:
    """The address of ``view`` on the server, with its default tag filter unless given."""
    spec = VIEWS[view]
    tags = spec.tag_filter if tag_filter is None else tag_filter
    return server_url + "/" + spec.query.format(tag_filter=tags)


def chromium_screenshot(
    url: str,
    out: str,
    chromium: str = CHROMIUM,
    size: tuple[int, int] = (1400, 900),
    budget_ms: int = 20000,
    timeout: float = 120.0,
) -> None:
    """Render ``url`` in headless Chromium and save a PNG at ``out``; no network but loopback."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--no-proxy-server",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={os.path.abspath(out)}",
            url,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")


def capture(
    url: str,
    out: str,
    view: str,
    chromium: str = CHROMIUM,
    size: tuple[int, int] = (1400, 900),
    budget_ms: int = 20000,
    attempts: int = 8,
) -> int:
    """Screenshot ``url`` (a page of ``view``) to ``out`` until it is drawn; its score.

    The cards render lazily and images load after the page; a load that loses the
    race leaves them blank, so look at the result and retry with more virtual time.
    Time Series loses it on up to half of the loads whatever the budget (measured
    5 to 120 s: its cards never ask for their data), hence the many attempts.
    """
    spec = VIEWS[view]
    for attempt in range(1, attempts + 1):
        chromium_screenshot(url, out, chromium, size, budget_ms * attempt)
        drawn = spec.drawn(out)
        if drawn >= spec.min_drawn:
            return drawn
        print(f"attempt {attempt}: {spec.what} not drawn yet, retrying", file=sys.stderr)
    raise SystemExit(f"{spec.what} still blank after {attempts} attempts; see {out}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--logdir",
        default=os.path.join("runs", "demo"),
        help="log folder with one run per scheme (default: %(default)s)",
    )
    parser.add_argument(
        "--view",
        choices=sorted(VIEWS),
        default="timeseries",
        help="dashboard view to capture (default: %(default)s)",
    )
    parser.add_argument(
        "--runs",
        help="comma-separated run folders to show (default: the view's, "
        + "; ".join(f"{name}: {v.runs}" for name, v in VIEWS.items())
        + ")",
    )
    parser.add_argument(
        "--tag-filter",
        help="regex of the tags to show in the timeseries and images views (default: "
        f"{VIEWS['timeseries'].tag_filter} for timeseries, none for images)",
    )
    parser.add_argument(
        "--out",
        help="PNG to write (default: docs/images/dashboard.png, depth_view.png or "
        "custom_scalars.png, by view)",
    )
    parser.add_argument(
        "--size",
        help="browser window WIDTHxHEIGHT, the PNG's size (default: 1100x450 for images, "
        "1400x900 otherwise)",
    )
    parser.add_argument(
        "--chromium", default=CHROMIUM, help="browser binary (default: %(default)s)"
    )
    parser.add_argument(
        "--budget-ms",
        type=int,
        default=20000,
        help="virtual time the page gets to load and draw (default: %(default)s)",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=8,
        help="screenshots to try until the view is drawn (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    view = VIEWS[args.view]
    if not os.path.exists(args.chromium):
        parser.error(f"--chromium: {args.chromium} not found (apt-get install chromium)")
    runs = [r.strip() for r in (args.runs or view.runs).split(",") if r.strip()]
    if not runs:
        parser.error("--runs: give at least one run folder")
    if args.tag_filter is not None and args.view == "custom_scalars":
        parser.error("--tag-filter: the custom_scalars view shows its layout's charts")
    try:
        width, height = (int(n) for n in (args.size or view.size).lower().split("x"))
    except ValueError:
        parser.error(f"--size: {args.size!r} is not WIDTHxHEIGHT, e.g. 1400x900")
    if width < 1 or height < 1:
        parser.error(f"--size: {args.size!r} must be positive")
    out = args.out or view.out
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="initzoo-dashboard-") as tmp:
        copy_runs(args.logdir, runs, tmp)
        try:
            # tensorflow=False: reading local event files needs no TensorFlow (~9 s to import)
            server = TensorBoardServer(tmp, tensorflow=False)
            server.start(ready=view_ready(args.view, runs))
        except TimeoutError as error:
            raise SystemExit(
                f"--view {args.view} needs {view.needs} in every run of {', '.join(runs)}; "
                f"TensorBoard never listed them: {error}"
            ) from None
        with server:
            url = view_url(server.url, args.view, args.tag_filter)
            capture(
                url, out, args.view, args.chromium, (width, height), args.budget_ms, args.attempts
            )
    print(f"saved {out} ({time.perf_counter() - start:.1f} s) from {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Screenshot the TensorBoard dashboard for the README, with headless Chromium.

Starts the installed TensorBoard on 127.0.0.1 against a copy of the chosen runs
(default: the demo's zoo_he, zoo_glorot and zoo_small; zoo_large's 1e19 gradients
would flatten every other line on TensorBoard's linear axes), loads the page in
Debian's chromium (``apt-get install chromium``) and saves a PNG.

    initzoo demo --logdir runs/demo
    python tools/screenshot_dashboard.py --logdir runs/demo --out docs/images/dashboard.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from tb_server import TensorBoardServer, scalar_tags_ready  # tools/tb_server.py, beside this

CHROMIUM = "/usr/bin/chromium"
MIN_COLOURED = 1500  # a blank chart area has < 200; three drawn cards have > 3,000
# The time-series (scalars) view, filtered by tag; smoothing 0 shows the raw values;
# forceSVG because headless Chromium without a GPU draws no WebGL lines.
DEFAULT_VIEW = "?darkMode=false&forceSVG=true&smoothing=0&tagFilter={tag_filter}#timeseries"


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


def coloured_pixels(png: str) -> int:
    """Strongly coloured pixels in the chart area (right of the run list, below the header).

    Drawn lines are coloured; an empty card is white and grey. A page caught before
    its charts rendered scores near 0, a drawn one thousands.
    """
    import matplotlib.image as mpimg

    image = mpimg.imread(png)[..., :3]
    saturation = image.max(axis=-1) - image.min(axis=-1)
    return int((saturation[150:, 290:1120] > 0.25).sum())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--logdir",
        default=os.path.join("runs", "demo"),
        help="log folder with one run per scheme (default: %(default)s)",
    )
    parser.add_argument(
        "--runs",
        default="zoo_he,zoo_glorot,zoo_small",
        help="comma-separated run folders to show (default: %(default)s)",
    )
    parser.add_argument(
        "--tag-filter",
        default="log10_grad_norm|log10_backprop|grad_norm/dense_01",
        help="regex of the tags to show (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        default=os.path.join("docs", "images", "dashboard.png"),
        help="PNG to write (default: %(default)s)",
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
        default=4,
        help="screenshots to try until the charts are drawn (default: 4)",
    )
    args = parser.parse_args(argv)
    if not os.path.exists(args.chromium):
        parser.error(f"--chromium: {args.chromium} not found (apt-get install chromium)")
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if not runs:
        parser.error("--runs: give at least one run folder")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="initzoo-dashboard-") as tmp:
        copy_runs(args.logdir, runs, tmp)
        ready = scalar_tags_ready({run: {"grad_norm/global"} for run in runs})
        with TensorBoardServer(tmp).start(ready=ready) as server:
            url = server.url + "/" + DEFAULT_VIEW.format(tag_filter=args.tag_filter)
            # The cards render lazily; a load that loses the race leaves them blank,
            # so look at the result and retry with more virtual time.
            for attempt in range(1, args.attempts + 1):
                chromium_screenshot(
                    url, args.out, args.chromium, budget_ms=args.budget_ms * attempt
                )
                if coloured_pixels(args.out) >= MIN_COLOURED:
                    break
                print(f"attempt {attempt}: charts not drawn yet, retrying", file=sys.stderr)
            else:
                raise SystemExit(
                    f"charts still blank after {args.attempts} attempts; see {args.out}"
                )
    print(f"saved {args.out} ({time.perf_counter() - start:.1f} s) from {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the whole-model tools' cost in units of one forward pass of the same model.

* ``lsuv`` on a 50-layer tanh MLP (width 256, batch 256) and on MobileNetV2
  (alpha 0.35, 64x64 inputs, batch 32): average calls per layer (the paper's
  "iterations": 1-5) and wall time as a multiple of one forward pass on the
  same batch (goal <= 10). The peer design, one full forward pass per layer
  per iteration (the PyTorch LSUV package's and the Keras 2 script's), runs
  on the MLP in the same process as a baseline, on the same batch.
* ``signal_report``: how often each layer runs (goal: twice, the residual
  probe's pass and the measuring one), and its wall time in forward passes.
* ``auto_initialize`` on a 100-layer ReLU MLP (no calibration is needed
  there): wall time beyond its one forward pass (goal < 1 s).

Times are medians over repeats after one warm-up; a forward pass is
``model(batch, training=False)`` in eager mode, as the tools run it.

Usage::

    python benchmarks/bench_model_tools.py              # about 2 minutes
    python benchmarks/bench_model_tools.py --quick      # smoke run
    python benchmarks/bench_model_tools.py --write benchmarks/RESULTS_model_tools.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import keras_initzoo as kiz  # noqa: E402
from keras_initzoo.models.lsuv import pre_activation  # noqa: E402
from keras_initzoo.models.trace import first_tensor, intercept, leaf_layers  # noqa: E402


def _median_seconds(function, repeats: int) -> float:
    function()  # warm-up: first calls build and trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _mlp(depth: int, width: int, activation: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((width,))]
        + [keras.layers.Dense(width, activation=activation) for _ in range(depth)]
    )


def _mobilenet(size: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(
        weights=None, input_shape=(size, size, 3), alpha=0.35, classes=10
    )


def forward_per_iteration_lsuv(model, batch, target_std=1.0, tol=0.1, max_iter=10) -> int:
    """The peer design: for each layer, a full forward pass per iteration. Returns passes."""
    layers = [site.layer for site in kiz.models.walk(model).kernels]
    passes = 0
    for layer in layers:
        for _ in range(max_iter):
            seen = {}

            def record(current, call, args, kwargs, seen=seen, layer=layer):
                if current is layer and "output" not in seen:
                    with pre_activation(current):
                        seen["output"] = first_tensor(call(*args, **kwargs))
                return call(*args, **kwargs)

            with intercept([layer], record):
                model(batch, training=False)
            passes += 1
            std = float(np.std(keras.ops.convert_to_numpy(seen["output"])))
            if abs(std - target_std) <= tol:
                break
            layer.kernel.assign(layer.kernel * (target_std / std))
    return passes


def bench_lsuv(name: str, model, batch, repeats: int, peer: bool) -> dict:
    forward = _median_seconds(lambda: model(batch, training=False), repeats)
    report = kiz.lsuv(model, batch, verbose=False)
    reached = [row["iterations"] for row in report if row["iterations"]]
    lsuv_time = _median_seconds(lambda: kiz.lsuv(model, batch, verbose=False), repeats)
    result = {
        "model": name,
        "kernels": len(report),
        "iterations per layer": statistics.mean(reached),
        "max iterations": max(reached),
        "forward ms": forward * 1e3,
        "lsuv ms": lsuv_time * 1e3,
        "lsuv / forward": lsuv_time / forward,
    }
    if peer:  # each run from the same orthonormal start as lsuv's

        def peer_run():
            kiz.reinitialize(model, "zoo_orthogonal")
            return forward_per_iteration_lsuv(model, batch)

        passes = peer_run()
        peer_time = _median_seconds(peer_run, max(1, repeats // 3))
        result.update({"peer passes": passes, "peer / forward": peer_time / forward})
    return result


def bench_signal_report(model, batch, targets, repeats: int) -> dict:
    calls: dict[int, int] = {}

    def count(layer, call, args, kwargs):
        calls[id(layer)] = calls.get(id(layer), 0) + 1
        return call(*args, **kwargs)

    # count the layer calls the report makes, by wrapping the interception of both its
    # passes: the residual probe's and the measuring one's
    modules = (kiz.models.signal, kiz.models.residual)
    originals = [module.intercept for module in modules]

    def counting(original):
        def counting_intercept(layers, handler):
            def both(layer, call, args, kwargs):
                return handler(layer, lambda *a, **k: count(layer, call, a, k), args, kwargs)

            return original(layers, both)

        return counting_intercept

    for module, original in zip(modules, originals, strict=True):
        module.intercept = counting(original)
    try:
        kiz.signal_report(model, batch, targets)
    finally:
        for module, original in zip(modules, originals, strict=True):
            module.intercept = original
    forward = _median_seconds(lambda: model(batch, training=False), repeats)
    report_time = _median_seconds(lambda: kiz.signal_report(model, batch, targets), repeats)
    return {
        "layers": len(leaf_layers(model)),
        "most calls of one layer": max(calls.values()),
        "report / forward": report_time / forward,
    }


def bench_auto(depth: int, width: int, batch_size: int, repeats: int) -> dict:
    model = _mlp(depth, width, "relu")
    batch = np.random.default_rng(0).standard_normal((batch_size, width)).astype("float32")
    forward = _median_seconds(lambda: model(batch, training=False), repeats)
    auto = _median_seconds(lambda: kiz.auto_initialize(model, batch), repeats)
    return {
        "depth": depth,
        "forward s": forward,
        "auto s": auto,
        "beyond forward s": auto - forward,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models, one repeat")
    parser.add_argument("--write", help="write the results as markdown to this file")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 5
    depth, width = (10, 64) if args.quick else (50, 256)
    size = 32 if args.quick else 64
    rng = np.random.default_rng(0)

    mlp = _mlp(depth, width, "tanh")
    mlp_batch = rng.standard_normal((256, width)).astype("float32")
    net = _mobilenet(size)
    net_batch = rng.standard_normal((32, size, size, 3)).astype("float32")
    lsuv_rows = [
        bench_lsuv(f"{depth}-layer tanh MLP, width {width}", mlp, mlp_batch, repeats, peer=True),
        bench_lsuv(f"MobileNetV2 (alpha 0.35, {size}x{size})", net, net_batch, repeats, False),
    ]
    targets = rng.standard_normal((256, width)).astype("float32")
    signal = bench_signal_report(mlp, mlp_batch, targets, repeats)
    auto = bench_auto(20 if args.quick else 100, width, 256, repeats)

    lines = [
        f"Measured with `python benchmarks/bench_model_tools.py{' --quick' if args.quick else ''}`"
        f" ({platform.machine()}, {os.cpu_count()} cores, Keras {keras.__version__}, backend "
        f"{keras.backend.backend()}, CPU).",
        "",
        "| lsuv on | kernels | calibration calls per layer (mean / max) | forward ms | lsuv ms | "
        "lsuv / forward | forward-per-iteration design / forward |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in lsuv_rows:
        peer = (
            f"{row['peer / forward']:.1f} ({row['peer passes']} passes)"
            if "peer passes" in row
            else "–"
        )
        lines.append(
            f"| {row['model']} | {row['kernels']} | {row['iterations per layer']:.2f} / "
            f"{row['max iterations']} | {row['forward ms']:.1f} | {row['lsuv ms']:.1f} | "
            f"{row['lsuv / forward']:.1f} | {peer} |"
        )
    lines += [
        "",
        f"- `signal_report` with targets on the MLP: each of its {signal['layers']} layers runs "
        f"at most {signal['most calls of one layer']} time(s): the residual probe's forward "
        "pass, then one forward and one backward pass, "
        f"{signal['report / forward']:.1f}x one forward pass in wall time.",
        f"- `auto_initialize` on a {auto['depth']}-layer ReLU MLP: {auto['auto s']:.2f} s, "
        f"{auto['beyond forward s']:.2f} s beyond one forward pass "
        f"({auto['forward s']:.3f} s); it runs three (the structure, the drawing pass, the "
        "check its predictions are set against).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        Path(args.write).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

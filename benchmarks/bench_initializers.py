"""Time and peak memory of the zoo's draws beside Keras' built-in initializers.

Run on the backend ``KERAS_BACKEND`` names::

    KERAS_BACKEND=jax python benchmarks/bench_initializers.py --write

Each case runs in a fresh subprocess, one at a time (a 50,000 x 4,096 float32
tensor is 819 MB). There the initializer draws a small
shape first (a large one freed would leave its pages to the allocator:
TensorFlow's keeps them), the peak resident set size is reset
(``/proc/self/clear_refs``) and the baseline taken; the large draw's peak
(``VmHWM``) above that baseline (compilation included on JAX), divided by the tensor's bytes, is the
*peak ratio*: 1 is the tensor alone, 2 the tensor and one temporary of its
size. Memory is deterministic; times are not (a shared machine): each is the
median of ``--repeats`` draws, with their min and max. On JAX the compiled
zoo draw's own figure comes too: ``memory_analysis()`` of
``jax.jit(...).lower(...).compile()``, its temporaries plus its output over
the tensor's bytes.

The model case builds a 100-layer MLP (``Dense(256)``) with each initializer:
the median of ``--repeats`` builds after one warm-up build.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# zoo alias -> the Keras built-in it is set beside
PAIRS = {
    "zoo_he": "HeNormal",
    "zoo_glorot": "GlorotUniform",
    "zoo_truncated_normal": "TruncatedNormal",
    "zoo_orthogonal": "Orthogonal",
}
SHAPES = [(4096, 4096), (16384, 1024), (50000, 4096)]
# QR of a 50,000 x 4,096 matrix takes minutes on two cores: left out.
SKIP = {("zoo_orthogonal", (50000, 4096))}
LOW_PRECISION = {"zoo_he": "bfloat16"}  # also drawn in bfloat16, beside float32
MODEL_DEPTH, MODEL_WIDTH = 100, 256


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _make(name: str):
    import keras

    import keras_initzoo as kiz

    if name.startswith("zoo_"):
        return kiz.get(name)
    return getattr(keras.initializers, name)(seed=1)


def _compiled_ratio(initializer, shape, dtype) -> float | None:
    """JAX only: the compiled zoo draw's temporaries and output over the tensor's bytes."""
    import keras

    from keras_initzoo.initializers import sampling

    if keras.backend.backend() != "jax" or not type(initializer).__module__.startswith("keras_"):
        return None
    original = sampling._jax_kernel
    kernel, lowered = original(), []

    def lowering_kernel(*arguments, **static):  # the draw, lowered on the way
        lowered.append(kernel.lower(*arguments, **static))
        return kernel(*arguments, **static)

    sampling._jax_kernel = lambda: lowering_kernel
    try:
        initializer(shape, dtype=dtype)
    finally:
        sampling._jax_kernel = original
    analysis = lowered[-1].compile().memory_analysis()
    used = analysis.temp_size_in_bytes + analysis.output_size_in_bytes
    return used / (math.prod(shape) * _itemsize(dtype))


def _itemsize(dtype: str) -> int:
    return {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}[dtype]


def _wait(tensor) -> None:
    """Waits for an asynchronous draw (JAX) by reading one value of it."""
    import keras

    keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.reshape(tensor, (-1,))[0], "float32"))


def measure_draw(name: str, shape: tuple[int, ...], dtype: str, repeats: int) -> dict:
    """In this (fresh) process: peak ratio and times of ``name``'s draw of ``shape``."""
    import gc

    initializer = _make(name)
    # warm-up on a small shape: a large one freed would leave its pages with the
    # allocator (TensorFlow's keeps them), hiding the next draw's peak
    _wait(initializer((64, 64), dtype=dtype))
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM := VmRSS
    baseline = _status_kib("VmRSS")
    start = time.perf_counter()
    kernel = initializer(shape, dtype=dtype)
    _wait(kernel)
    times = [time.perf_counter() - start]
    peak = _status_kib("VmHWM")
    del kernel
    gc.collect()
    for _ in range(repeats - 1):
        start = time.perf_counter()
        kernel = initializer(shape, dtype=dtype)
        _wait(kernel)
        times.append(time.perf_counter() - start)
        del kernel
        gc.collect()
    tensor_bytes = math.prod(shape) * _itemsize(dtype)
    return {
        "peak_ratio": (peak - baseline) * 1024 / tensor_bytes,
        "compiled_ratio": _compiled_ratio(initializer, shape, dtype),
        "times": times,
    }


def measure_model(name: str, repeats: int) -> dict:
    """In this process: seconds to build a 100-layer MLP whose kernels ``name`` draws."""
    import keras

    def build():
        layers = [keras.Input((MODEL_WIDTH,))]
        layers += [
            keras.layers.Dense(MODEL_WIDTH, kernel_initializer=_make(name))
            for _ in range(MODEL_DEPTH)
        ]
        return keras.Sequential(layers)

    build()
    times = []
    for _ in range(repeats):
        keras.backend.clear_session()
        start = time.perf_counter()
        build()
        times.append(time.perf_counter() - start)
    return {"times": times}


def _in_subprocess(arguments: list[str]) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, __file__, "--measure", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{arguments} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _seconds(times: list[float]) -> str:
    return f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})"


def run(repeats: int, shapes: list[tuple[int, int]]) -> list[str]:
    import keras

    backend = keras.backend.backend()
    lines = [
        f"Backend: {backend}. Peak ratio: the draw's peak resident memory above the",
        "baseline over the tensor's bytes (deterministic). Seconds: median (min-max) of",
        f"{repeats} draws on a shared 2-core machine (noisy). Each row a fresh process.",
        "",
        "| shape | dtype | zoo | peak ratio | s | Keras | peak ratio | s |"
        + (" zoo compiled ratio |" if backend == "jax" else ""),
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
        + (" --- |" if backend == "jax" else ""),
    ]
    for shape in shapes:
        for zoo, peer in PAIRS.items():
            if (zoo, shape) in SKIP:
                continue
            for dtype in ["float32", *([LOW_PRECISION[zoo]] if zoo in LOW_PRECISION else [])]:
                spec = ["draw", "x".join(map(str, shape)), dtype, str(repeats)]
                ours, theirs = (_in_subprocess([name, *spec]) for name in (zoo, peer))
                row = (
                    f"| {shape[0]:,} x {shape[1]:,} | {dtype} | {zoo} | {ours['peak_ratio']:.2f} | "
                    f"{_seconds(ours['times'])} | {peer} | {theirs['peak_ratio']:.2f} | "
                    f"{_seconds(theirs['times'])} |"
                )
                if backend == "jax":
                    row += f" {ours['compiled_ratio']:.2f} |"
                print(row, flush=True)
                lines.append(row)
    lines += ["", f"{MODEL_DEPTH} x Dense({MODEL_WIDTH}) built, seconds:", ""]
    lines += ["| zoo | s | Keras | s |", "| --- | --- | --- | --- |"]
    for zoo, peer in [("zoo_he", "HeNormal"), ("zoo_glorot", "GlorotUniform")]:
        ours, theirs = (
            _in_subprocess([name, "model", "-", "-", str(repeats)]) for name in (zoo, peer)
        )
        row = f"| {zoo} | {_seconds(ours['times'])} | {peer} | {_seconds(theirs['times'])} |"
        print(row, flush=True)
        lines.append(row)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", action="store_true", help="write RESULTS_initializers_<backend>.md"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shapes", nargs="*", default=["x".join(map(str, s)) for s in SHAPES])
    parser.add_argument("--measure", nargs=5, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        name, kind, shape, dtype, repeats = arguments.measure
        if kind == "model":
            result = measure_model(name, int(repeats))
        else:
            result = measure_draw(name, tuple(map(int, shape.split("x"))), dtype, int(repeats))
        print(json.dumps(result))
        return
    shapes = [tuple(map(int, shape.split("x"))) for shape in arguments.shapes]
    lines = run(arguments.repeats, shapes)
    if arguments.write:
        import keras

        path = Path(__file__).parent / f"RESULTS_initializers_{keras.backend.backend()}.md"
        backend = keras.backend.backend()
        command = f"KERAS_BACKEND={backend} python benchmarks/bench_initializers.py --write"
        path.write_text(
            f"# Initializer draws: zoo vs Keras\n\n`{command}`\n\n" + "\n".join(lines) + "\n"
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Memory of a large draw on JAX, from the compiled draw: deterministic on a noisy machine.

Peak resident memory (``benchmarks/bench_initializers.py``) moves with the
allocator and whatever else runs; what XLA plans for a compiled draw does
not: ``jax.jit(f).lower(...).compile().memory_analysis()``, its temporaries
plus its output, over the tensor's bytes (1: the tensor alone). Keras compiles
a kernel's draw this way itself when it shards it at build
(``tests/test_jax_sharded.py``), and the zoo's JAX draws run as one compiled
function everywhere (``keras_initzoo/initializers/sampling.py``).

The issue's bound is the tensor plus one temporary in the compute dtype: 2x a
float32 tensor's bytes, 3x a 16-bit one's drawn in float32. On JAX's CPU
backend the zoo measures 4x (float32) and 9x (bfloat16), exactly what Keras'
own draws and a bare ``jax.random.normal`` take: threefry's random bits are
three uint32 temporaries per element (two output words and a counter); XLA
fuses the float32 scaling into them, and a 16-bit draw also holds the float32
value before its one rounding. The ``rbg`` key takes none
(1x: the output alone), but Keras 3.15's seeds are threefry's ``uint32[2]``
raw keys, so ``jax_default_prng_impl="rbg"`` breaks every Keras draw, its
own and the zoo's (checked below); and ``rbg``'s numbers depend on the
platform and on the sharding, which would break the zoo's promise that the
sharded and the unsharded build are equal. So the tests assert the measured
bounds, not the issue's.

One fresh JAX interpreter (``tests/jax_multiprocess.py``) measures it all,
whatever backend the test session uses; without JAX the tests skip.
"""

from __future__ import annotations

import textwrap

import pytest
from jax_multiprocess import run_devices

SHAPE = (4096, 1024)
ORTHOGONAL_SHAPE = (4096, 4096)
# Besides the tensor-sized buffers a draw holds its seed, scalars and XLA's
# small allocations (measured: 193 bytes); 64 KiB is far below one tensor (16 MiB).
SLACK = 2**16

SCRIPT = textwrap.dedent(
    """
    import json, math, sys
    sys.path.insert(0, "benchmarks")
    import jax, keras
    import keras_initzoo as kiz
    from bench_initializers import _compiled_ratio, _itemsize

    shape, square = tuple(json.loads(sys.argv[1])), tuple(json.loads(sys.argv[2]))

    def compiled(function, shape, dtype):
        # The whole call jitted, as Keras jits an initializer's call to shard it.
        lowered = jax.jit(function, static_argnames=("shape", "dtype")).lower(
            shape=shape, dtype=dtype)
        analysis = lowered.compile().memory_analysis()
        used = analysis.temp_size_in_bytes + analysis.output_size_in_bytes
        return {"ratio": used / (math.prod(shape) * _itemsize(dtype)),
                "output": analysis.output_size_in_bytes, "f64": "f64" in lowered.as_text()}

    out = {"zoo": {}, "zoo_call": {}, "keras": {}, "bare": {}}
    peers = {"zoo_he": "HeNormal", "zoo_glorot": "GlorotUniform",
             "zoo_truncated_normal": "TruncatedNormal"}
    for alias, peer in peers.items():
        for dtype in ("float32", "bfloat16"):
            key = f"{alias}/{dtype}"
            # The draw itself (the benchmark's figure), and the whole call.
            out["zoo"][key] = _compiled_ratio(kiz.get(alias), shape, dtype)
            out["zoo_call"][key] = compiled(kiz.get(alias).__call__, shape, dtype)
            out["keras"][key] = compiled(
                getattr(keras.initializers, peer)(seed=1).__call__, shape, dtype)
    out["zoo_call"]["zoo_orthogonal"] = compiled(
        kiz.get("zoo_orthogonal").__call__, square, "float32")
    out["keras"]["zoo_orthogonal"] = compiled(
        keras.initializers.Orthogonal(seed=1).__call__, square, "float32")

    for impl in ("threefry2x32", "rbg"):
        def bare(shape, dtype, impl=impl):
            return jax.random.normal(jax.random.key(0, impl=impl), shape, dtype=dtype)
        out["bare"][impl] = compiled(bare, shape, "float32")["ratio"]

    # Keras' seeds under the rbg implementation (set last: it changes every later draw).
    jax.config.update("jax_default_prng_impl", "rbg")
    try:
        keras.random.normal((4, 4), seed=1)
        out["keras_under_rbg"] = "drew"
    except TypeError as err:
        out["keras_under_rbg"] = str(err)[:200]
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def report():
    report = run_devices(SCRIPT, 1, str(list(SHAPE)), str(list(ORTHOGONAL_SHAPE)), timeout=300)
    print(report)  # the figures (pytest -s)
    return report


def _bound(ratio: float, shape=SHAPE, itemsize: int = 4) -> float:
    return ratio + SLACK / (shape[0] * shape[1] * itemsize)


@pytest.mark.slow
@pytest.mark.parametrize("alias", ["zoo_he", "zoo_glorot", "zoo_truncated_normal"])
def test_a_fan_scaled_draw_holds_the_tensor_and_threefrys_bits(report, alias):
    for dtype, measured in (("float32", 4.0), ("bfloat16", 9.0)):
        key = f"{alias}/{dtype}"
        ratio, call = report["zoo"][key], report["zoo_call"][key]
        itemsize = 4 if dtype == "float32" else 2
        # float32: output 1 + threefry's 3 uint32 = 4 float32 tensors' bytes (the
        # issue's bound is 2). bfloat16: output 1 + 8 = 9 bfloat16 tensors' bytes,
        # 4.5 float32 ones (the bound is 3): threefry's 3 words and the float32
        # value before the one rounding.
        assert 1.0 <= ratio <= _bound(measured, itemsize=itemsize), (key, ratio)
        # Keras' whole jitted call adds nothing to the draw, and nothing in float64.
        assert call["ratio"] == pytest.approx(ratio, abs=SLACK / (SHAPE[0] * SHAPE[1]))
        assert call["output"] == SHAPE[0] * SHAPE[1] * itemsize and not call["f64"], key


@pytest.mark.slow
def test_the_zoo_draws_in_no_more_memory_than_keras_in_the_same_run(report):
    for key, ratio in report["zoo"].items():
        # Keras' own draws, compiled the same way: the same 4x and 9x (its
        # bfloat16 draw makes its bits in bfloat16 and still takes 9x).
        keras_ratio = report["keras"][key]["ratio"]
        assert ratio <= _bound(keras_ratio), (key, ratio, keras_ratio)
    # The zoo's figure is JAX's own sampler's: a bare threefry normal takes it too,
    # the rbg key none of it.
    assert report["zoo"]["zoo_he/float32"] == pytest.approx(report["bare"]["threefry2x32"])
    assert report["bare"]["threefry2x32"] >= 3.0
    assert report["bare"]["rbg"] <= _bound(1.0)


@pytest.mark.slow
def test_keras_seeds_do_not_run_under_the_rbg_implementation(report):
    # Why the zoo keeps threefry: Keras 3.15 hands jax.random a uint32[2] raw key.
    # If this starts to pass through, re-measure: rbg may then meet the 2x bound.
    assert "expected key_data.shape to end with (4,)" in report["keras_under_rbg"]


@pytest.mark.slow
def test_orthogonal_compiled_draw_bound(report):
    # 4,096 x 4,096 float32 (64 MiB), the whole call compiled: output 1 + temp 3,
    # as for the fan-scaled draws: XLA reuses threefry's buffers for the QR's
    # factors (LAPACK's own blocked workspace, about n x 64 floats, is not in
    # XLA's plan). Keras' Orthogonal measures the same.
    ortho, peer = report["zoo_call"]["zoo_orthogonal"], report["keras"]["zoo_orthogonal"]
    assert 1.0 <= ortho["ratio"] <= _bound(4.0, ORTHOGONAL_SHAPE), ortho
    assert ortho["ratio"] <= _bound(peer["ratio"], ORTHOGONAL_SHAPE) and not ortho["f64"]

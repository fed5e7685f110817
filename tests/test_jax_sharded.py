"""Initializers and GradientNormLogger under ``keras.distribution.ModelParallel``, on 8 host CPUs.

One fresh JAX interpreter (``tests/jax_multiprocess.py``) runs every check
and reports; the tests below read its report. Keras builds a variable inside
``jax.jit(initializer.__call__, out_shardings=layout)`` when its estimate
``prod(shape) * 4 bytes * devices`` reaches 250 MiB
(``keras/src/backend/jax/core.py``): an 8,192 x 1,024 kernel on 8 devices, so
the ``big_*`` kernels below take that path and the ``small`` one the eager
path (drawn whole, then ``device_put``). The run checks that this is so (a
draw that sees a tracer), so a change in Keras fails here loudly.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from jax_multiprocess import run_devices

# Under JAX or PyTorch (test_backends.py) this would repeat its own runs.
pytestmark = pytest.mark.drives_backends(reason="runs its checks in a JAX subprocess of its own")

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import jax, keras, numpy as np
    from keras.src.backend.jax import core as keras_jax_core
    import keras_initzoo as kiz
    from jax_multiprocess import fit_logged

    started = time.perf_counter()
    tmp = sys.argv[1]
    devices = jax.devices()
    assert len(devices) == 8, devices
    BIG = (8192, 1024)
    mesh = keras.distribution.DeviceMesh((8,), ["model"], devices)
    out = {}

    # Keras' private rule for the jitted build, as this file relies on it.
    sharding = jax.sharding.NamedSharding(
        mesh.backend_mesh, jax.sharding.PartitionSpec(None, "model"))
    out["rule"] = [keras_jax_core.should_shard_at_init(sharding, BIG),
                   keras_jax_core.should_shard_at_init(sharding, (1024, 1024))]

    def model_parallel():
        layouts = keras.distribution.LayoutMap(mesh)
        layouts[".*kernel"] = (None, "model")
        return keras.distribution.ModelParallel(layout_map=layouts)

    def build(initializer, distributed=True):
        keras.distribution.set_distribution(model_parallel() if distributed else None)
        try:
            inputs = keras.Input((BIG[0],))
            a = keras.layers.Dense(BIG[1], name="big_a", kernel_initializer=initializer)(inputs)
            b = keras.layers.Dense(BIG[1], name="big_b", kernel_initializer=initializer)(inputs)
            c = keras.layers.Dense(8, name="small", kernel_initializer=initializer)(a)
            return keras.Model(inputs, [b, c])
        finally:
            keras.distribution.set_distribution(None)

    def kernels(model):
        return {name: np.asarray(model.get_layer(name).kernel.value)
                for name in ("big_a", "big_b", "small")}

    # 1. One shared instance, int seed: the jitted path twice, then the eager one.
    traced = []
    class Probe(kiz.HeNormal):
        def draw(self, shape, dtype):
            value = super().draw(shape, dtype)
            traced.append(isinstance(value, jax.core.Tracer))
            return value

    keras.backend.clear_session()
    build(Probe(seed=1))
    out["traced"] = traced
    keras.backend.clear_session()
    model = build(kiz.HeNormal(seed=1))
    sharded = kernels(model)
    out["spec"] = str(model.get_layer("big_a").kernel.value.sharding.spec)
    out["shared_distinct"] = not np.array_equal(sharded["big_a"], sharded["big_b"])
    keras.backend.clear_session()  # the same seed streams again, now without a distribution
    unsharded = kernels(build(kiz.HeNormal(seed=1), distributed=False))
    out["sharded_equals_unsharded"] = all(
        np.array_equal(sharded[k], unsharded[k]) for k in sharded)

    out["t2"] = time.perf_counter() - started
    # 2. A .keras file of that model loads under the distribution: the jitted build again.
    path = tmp + "/sharded.keras"
    model.save(path)
    keras.distribution.set_distribution(model_parallel())
    try:
        loaded = keras.saving.load_model(path)
    finally:
        keras.distribution.set_distribution(None)
    out["loaded_equals_saved"] = all(
        np.array_equal(a, b) for a, b in zip(kernels(loaded).values(), sharded.values()))
    out["loaded_spec"] = str(loaded.get_layer("big_b").kernel.value.sharding.spec)
    del model, loaded, sharded, unsharded

    out["t3"] = time.perf_counter() - started
    # 3. A user's SeedGenerator shared through the jitted draws, and seed=None.
    generator = keras.random.SeedGenerator(7)
    drawn = kernels(build(kiz.GlorotUniform(seed=generator)))
    state = generator.state.value
    out["user_state"] = [isinstance(state, jax.core.Tracer), np.asarray(state).tolist()]
    out["user_distinct"] = not np.array_equal(drawn["big_a"], drawn["big_b"])
    drawn = kernels(build(kiz.HeNormal()))
    out["none_distinct"] = not np.array_equal(drawn["big_a"], drawn["big_b"])
    del drawn

    out["t4"] = time.perf_counter() - started
    # 4. Every alias through Keras' jitted call, against its eager draw of the same seeds.
    def jitted(initializer, shape, spec):
        target = jax.sharding.NamedSharding(mesh.backend_mesh, jax.sharding.PartitionSpec(*spec))
        # A new jit per call, as Keras makes one per variable.
        return jax.jit(initializer.__call__, out_shardings=target,
                       static_argnames=["shape", "dtype"])(shape=shape, dtype="float32")

    aliases = {}
    for info in kiz.list_initializers():
        shape = (3, 3, 16, 64) if info.cls.__name__ in ("Dirac", "DeltaOrthogonal") else (64, 64)
        spec = (None,) * (len(shape) - 1) + ("model",)
        eager_init = info.make(seed=keras.random.SeedGenerator(3))
        jit_init = info.make(seed=keras.random.SeedGenerator(3))
        eager = [np.asarray(eager_init(shape, "float32")) for _ in range(2)]
        # The jitted draw, then an eager one: it starts where the traced call left the state.
        values = [jitted(jit_init, shape, spec), jit_init(shape, "float32")]
        got = [np.asarray(v) for v in values]
        ulps = max(int(np.max(np.abs(
            e.view(np.int32).astype(np.int64) - g.view(np.int32).astype(np.int64))))
            for e, g in zip(eager, got))
        aliases[info.alias] = {
            "ulps": ulps,
            "spec": str(values[0].sharding.spec) == str(jax.sharding.PartitionSpec(*spec)),
            "calls_differ": not np.array_equal(got[0], got[1]),
            "random": info.cls.draws_randomly,
        }
    out["aliases"] = aliases

    out["t5"] = time.perf_counter() - started
    # 5. Per-device memory of the compiled sharded draw.
    def memory(alias, shape):
        info = next(i for i in kiz.list_initializers() if i.alias == alias)
        spec = (None,) * (len(shape) - 1) + ("model",)
        target = jax.sharding.NamedSharding(mesh.backend_mesh, jax.sharding.PartitionSpec(*spec))
        compiled = jax.jit(info.make(seed=1).__call__, out_shardings=target,
                           static_argnames=["shape", "dtype"]).lower(
                               shape=shape, dtype="float32").compile()
        analysis = compiled.memory_analysis()
        full = int(np.prod(shape)) * 4
        return {"full": full, "shard": full // 8, "output": analysis.output_size_in_bytes,
                "temp": analysis.temp_size_in_bytes}

    out["memory"] = {alias: memory(alias, shape) for alias, shape in [
        ("zoo_he", BIG), ("zoo_glorot", BIG), ("zoo_lecun", BIG), ("zoo_orthogonal", BIG),
        ("zoo_delta_orthogonal", (3, 3, 512, 512))]}

    out["t6"] = time.perf_counter() - started
    # 6. GradientNormLogger under ModelParallel on a 2 x 2 mesh (batch x model)
    #    against the one-device run of the same weights and batches.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.normal(size=(32, 4)).astype("float32")

    grid = keras.distribution.DeviceMesh((2, 2), ["batch", "model"], devices[:4])
    layouts = keras.distribution.LayoutMap(grid)
    layouts[".*kernel"] = (None, "model")
    one, start, _ = fit_logged(tmp + "/one", None, x, y, batch_size=8, epochs=1)
    two, _, spec = fit_logged(tmp + "/grid", keras.distribution.ModelParallel(
        layout_map=layouts, batch_dim_name="batch"), x, y, start, batch_size=8, epochs=1)
    out["logger"] = {"one": one, "grid": two, "spec": spec}
    out["seconds"] = time.perf_counter() - started
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    report = run_devices(SCRIPT, 8, str(tmp_path_factory.mktemp("sharded")), timeout=600)
    # The README's figures (pytest -s): per-device memory and wall times.
    print({key: report[key] for key in report if key == "memory" or key[0] in "st"})
    return report


@pytest.mark.slow
def test_keras_builds_the_big_kernels_inside_jit(report):
    # Keras' 250 MiB rule, and the draws it traced: both big kernels, not the small one.
    assert report["rule"] == [True, False]
    assert report["traced"] == [True, True, False]
    assert report["spec"] == "P(None, 'model')"


@pytest.mark.slow
def test_shared_instance_draws_distinct_kernels_and_save_load_rebuilds(report):
    assert report["shared_distinct"]
    assert report["loaded_equals_saved"]
    assert report["loaded_spec"] == "P(None, 'model')"


@pytest.mark.slow
def test_sharded_build_equals_unsharded_build(report):
    # HeNormal draws a truncated normal by inversion: bit for bit in both builds.
    assert report["sharded_equals_unsharded"]


@pytest.mark.slow
def test_no_tracer_reaches_a_users_seed_generator(report):
    traced, state = report["user_state"]
    assert not traced
    assert state == [7, 3]  # three kernels, one seed each, as eager draws advance it
    assert report["user_distinct"] and report["none_distinct"]


@pytest.mark.slow
def test_every_alias_draws_the_same_sharded_as_eager(report):
    aliases = report["aliases"]
    assert len(aliases) >= 30
    for alias, result in aliases.items():
        assert result["spec"], alias
        # Normal draws: XLA fuses the jitted erfinv and scaling (an FMA) unlike
        # the eager ops, so those differ by a few roundings (measured: 2 ULP).
        assert result["ulps"] <= 4, alias
        assert result["calls_differ"] == result["random"], alias
    exact = [a for a, r in aliases.items() if r["ulps"] == 0]
    assert {"zoo_he", "zoo_glorot", "zoo_orthogonal", "zoo_uniform"} <= set(exact)


@pytest.mark.slow
def test_sharded_draw_holds_only_its_shard_per_device(report):
    mem = report["memory"]
    for alias in ("zoo_he", "zoo_glorot", "zoo_lecun"):
        m = mem[alias]
        assert m["output"] == m["shard"]
        # Threefry keeps two 32-bit words and a counter per element of the local
        # shard (measured: temp = 3 shards): 4 shards per device, half of the
        # full tensor on 8 devices. Drawing the full tensor would need 9.
        assert m["output"] + m["temp"] <= 4 * m["shard"] + 2**20, (alias, m)
    # The QR needs the whole matrix: every device holds it and its workspace
    # (measured 4x the full tensor); documented in the README.
    ortho = mem["zoo_orthogonal"]
    assert ortho["output"] == ortho["shard"] and ortho["temp"] <= 4 * ortho["full"] + 2**20
    delta = mem["zoo_delta_orthogonal"]  # one 512 x 512 orthogonal tap
    assert delta["temp"] <= 4 * 512 * 512 * 4 + 2**20


@pytest.mark.slow
def test_logger_norms_under_model_parallel_equal_one_device(report):
    one, grid = report["logger"]["one"], report["logger"]["grid"]
    assert report["logger"]["spec"] == "P(None, 'model')"
    assert set(one) == set(grid) >= {"grad_norm/global", "grad_norm/hidden", "grad_norm/out"}
    for tag in one:
        assert [s for s, _ in one[tag]] == [s for s, _ in grid[tag]] == [1, 2, 3, 4], tag
        np.testing.assert_allclose(
            [v for _, v in grid[tag]], [v for _, v in one[tag]], rtol=1e-6, err_msg=tag
        )

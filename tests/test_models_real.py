"""The whole-model tools on models other people wrote, built from random weights (no download)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_initzoo as kiz

pytestmark = pytest.mark.slow


def _mobilenet():
    return keras.applications.MobileNetV2(
        weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10
    )


def _resnet():
    return keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)


def _bert():
    keras_hub = pytest.importorskip("keras_hub")
    return keras_hub.models.BertBackbone(
        vocabulary_size=100,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=16,
    )


MODELS = {"mobilenet_v2": _mobilenet, "resnet50": _resnet, "bert": _bert}


def _first_output(output):
    """The main output as NumPy (a PyTorch output requires grad: no ``numpy()`` of its own)."""
    output = output["sequence_output"] if isinstance(output, dict) else output
    return keras.ops.convert_to_numpy(output)


def _check_save_and_load(model, batch, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(
        _first_output(restored(batch, training=False)),
        _first_output(model(batch, training=False)),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reinitialize_gives_every_kernel_its_true_fan_variance(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    report = kiz.reinitialize(model, "zoo_he")
    checked = 0
    for row in report:
        size = int(np.prod(row["shape"]))
        if row["target var"] is None or size < 2000:
            continue  # too few samples for a tight check
        # 2000+ samples: a sample variance's relative std error is sqrt(2/n) < 3.2 %
        assert row["actual var"] == pytest.approx(row["target var"], rel=0.15), row
        assert row["target var"] == pytest.approx(2.0 / row["fan_in"])
        checked += 1
    assert checked >= 5
    if name == "mobilenet_v2":
        depthwise = [r for r in report if "depthwise" in r["path"]]
        assert depthwise and all(r["fan_in"] == 9 for r in depthwise)
    if name == "bert":
        query = [r for r in report if "query" in r["path"]]
        assert query and all(r["fan_in"] == 32 for r in query)  # model_dim, not heads*key_dim
    batch = kiz.models.synthetic_batch(model, batch_size=4)
    _check_save_and_load(model, batch, tmp_path)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_auto_lsuv_and_signal_report_run_on_real_models(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    batch = kiz.models.synthetic_batch(model, batch_size=8)
    auto = kiz.auto_initialize(model, batch)
    assert len(auto) == len(kiz.models.walk(model).kernels)
    lsuv = kiz.lsuv(model, batch)
    reached = [row for row in lsuv if row["std after"] is not None]
    assert reached and all(abs(row["std after"] - 1.0) <= 0.1 for row in reached)
    signal = kiz.signal_report(model, batch)
    assert signal.verdict in ("healthy", "vanishing", "exploding")
    assert all(np.isfinite(row["act std"]) for row in signal)
    _check_save_and_load(model, batch, tmp_path)

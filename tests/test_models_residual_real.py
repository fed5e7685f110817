"""The residual stream on models other people wrote: keras.applications and KerasHub.

Built from configs with random weights and small inputs (no preset, no
download); every backend (``tests/test_backends.py``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.models.trace import intercept, leaf_layers

pytestmark = pytest.mark.slow


def _images(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 64, 64, 3)).astype("float32")


def test_resnet50_reads_healthy_after_the_packages_own_work_and_sick_when_a_branch_swamps():
    """The issue's ResNet50: zoo_he and auto_initialize were called 'exploding' because the
    report ran BatchNormalization on its moving statistics. Measured as in training, they are
    healthy; the last BN scale of one block's branch x10 is exploding at that block."""
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    x = _images()
    assert len(kiz.residual_structure(model, x)) == 16
    assert kiz.signal_report(model, x).verdict == "healthy"
    kiz.reinitialize(model, "zoo_he")
    assert kiz.signal_report(model, x).verdict == "healthy"
    # control: the inference-mode reading the issue saw
    assert kiz.signal_report(model, x, training=False).verdict == "exploding"
    kiz.auto_initialize(model, x)
    assert kiz.signal_report(model, x).verdict == "healthy"
    gamma = model.get_layer("conv3_block2_3_bn").gamma
    gamma.assign(gamma * 10.0)
    report = kiz.signal_report(model, x)
    assert (report.verdict, report.where) == ("exploding", "conv3_block2")


def _backbones():
    keras_hub = pytest.importorskip("keras_hub")
    sizes = dict(vocabulary_size=1000, num_layers=2, hidden_dim=64, intermediate_dim=128)
    ids = np.random.default_rng(0).integers(0, 1000, (2, 16)).astype("int32")
    data = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    return {
        "gpt2": (keras_hub.models.GPT2Backbone(num_heads=4, max_sequence_length=32, **sizes), data),
        "llama": (
            keras_hub.models.LlamaBackbone(num_query_heads=4, num_key_value_heads=2, **sizes),
            data,
        ),
        "bert": (
            keras_hub.models.BertBackbone(num_heads=4, max_sequence_length=32, **sizes),
            {**data, "segment_ids": np.zeros_like(ids)},
        ),
    }


def test_keras_hub_backbones_read_healthy_with_rows_in_call_order():
    """Untouched GPT-2 and Llama read 'exploding' when judged against their small embedding."""
    for name, (model, data) in _backbones().items():
        report = kiz.signal_report(model, data)
        assert report.verdict == "healthy", (name, report.where)
        assert len(report.stream) == 4, name  # attention and MLP joins of 2 blocks
        called = {}  # each layer's first call, in order

        def record(layer, call, args, kwargs, called=called):
            called.setdefault(id(layer), layer.path or layer.name)
            return call(*args, **kwargs)

        with intercept(leaf_layers(model), record):
            model(data, training=True)
        assert [row["layer"] for row in report] == list(called.values()), name
        # control: tracking order, what the rows followed before, is not the call order
        tracked = [layer.path or layer.name for layer in leaf_layers(model)]
        assert tracked != [row["layer"] for row in report], name


def test_auto_initialize_on_gpt2_reads_its_gelu_and_puts_embeddings_on_one_scale():
    model, data = _backbones()["gpt2"]
    report = {row["path"]: row for row in kiz.auto_initialize(model, data)}
    fed = report["transformer_layer_0/feedforward_output_dense/kernel"]
    assert fed["fed by"] == "gelu_approximate"
    assert fed["scheme"] == f"gain(gelu_approximate) = {kiz.gain('gelu', approximate=True):.4f}"
    token = report["token_embedding/embeddings"]["actual var"]
    position = report["position_embedding/embeddings"]["actual var"]
    assert token == pytest.approx(1.0, rel=0.1) and position == pytest.approx(1.0, rel=0.1)
    assert kiz.signal_report(model, data).verdict == "healthy"

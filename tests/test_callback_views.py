"""What GradientNormLogger shows: groups by path or block, the depth heatmap, the layout."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import load_events
from tensorboard.plugins.custom_scalar import layout_pb2

import keras_initzoo as kiz
from keras_initzoo.callbacks.groups import block_of, resolve_layer_groups
from keras_initzoo.callbacks.rows import RowLayout
from keras_initzoo.callbacks.views import LINES_PER_CHART, charts


class Mlp(keras.layers.Layer):
    """A custom layer holding sublayers, as a transformer block's feed-forward part."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense_1 = keras.layers.Dense(8, activation="relu", name="dense_1")
        self.dense_2 = keras.layers.Dense(6, name="dense_2")

    def call(self, x):
        return self.dense_2(self.dense_1(x))


class Block(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.mlp = Mlp(name="mlp")

    def call(self, x):
        return x + self.mlp(self.norm(x))


def _blocks_model(blocks=3):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(6, name="stem")(inputs)
    for i in range(blocks):
        x = Block(name=f"block_{i}")(x)
    outputs = keras.layers.Dense(1, name="head")(x)
    return keras.Model(inputs, outputs)


def test_groups_are_leaf_paths_in_forward_order():
    model = _blocks_model()
    names = [g.name for g in resolve_layer_groups(model)]
    expected = ["stem"]
    for i in range(3):
        expected += [f"block_{i}/norm", f"block_{i}/mlp/dense_1", f"block_{i}/mlp/dense_2"]
    assert names == expected + ["head"]


def test_group_by_block_regex_and_callable():
    model = _blocks_model()
    assert [g.name for g in resolve_layer_groups(model, "block")] == [
        "stem",
        "block_0",
        "block_1",
        "block_2",
        "head",
    ]
    by_kind = resolve_layer_groups(model, re.compile(r"/(norm|mlp)"))
    assert [g.name for g in by_kind] == ["stem", "norm", "mlp", "head"]
    depth = resolve_layer_groups(model, lambda path: path.split("/")[-1])
    assert [g.name for g in depth] == ["stem", "norm", "dense_1", "dense_2", "head"]
    # every variable is in exactly one group, whatever the grouping
    for grouping in ("layer", "block", re.compile("mlp"), lambda p: "all"):
        grouped = [id(v) for g in resolve_layer_groups(model, grouping) for v in g.variables]
        assert sorted(grouped) == sorted(id(v) for v in model.trainable_variables)


@pytest.mark.parametrize(
    "path, block",
    [
        ("transformer_layer_3/self_attention/query", "transformer_layer_3"),
        ("block_10_expand", "block_10"),
        ("block2b_expand_conv", "block2b"),
        ("conv2_block1_1_conv", "conv2_block1"),
        ("Conv1", "Conv1"),
    ],
)
def test_block_names_of_real_models(path, block):
    assert block_of(path) == block


def test_mobilenet_blocks_in_depth_order():
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35)
    names = [g.name for g in resolve_layer_groups(model, "block")]
    blocks = [n for n in names if n.startswith("block_")]
    assert blocks == [f"block_{i}" for i in range(1, 17)]  # block_10 after block_9
    assert names[0] == "Conv1" and names[-1] == "predictions"


def test_bad_group_by_is_named(tmp_path):
    with pytest.raises(ValueError, match="`group_by`"):
        kiz.GradientNormLogger(tmp_path, group_by="(unclosed")
    with pytest.raises(ValueError, match="`group_by`"):
        kiz.GradientNormLogger(tmp_path, group_by=3)


def test_fit_logs_group_tags(tmp_path):
    model = _blocks_model(2)
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    cb = kiz.GradientNormLogger(tmp_path, group_by="block")
    model.fit(x, x[:, :1], batch_size=8, verbose=0, callbacks=[cb])
    tags = set(load_events(tmp_path).Tags()["scalars"])
    assert {"grad_norm/block_0", "grad_norm/block_1", "grad_norm/stem"} <= tags


def test_depth_heatmap_rows_are_the_groups_first_layer_on_top(tmp_path):
    """A 10-layer ReLU MLP with tiny weights: gradients vanish towards the first layers,
    so the heatmap's top rows are darker (viridis: darker = smaller) than its bottom."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((16,))]
        + [
            keras.layers.Dense(
                16, activation="relu", kernel_initializer="zoo_small", bias_initializer="ones"
            )
            for _ in range(10)
        ]
    )
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(64, 16)).astype("float32")
    model.fit(
        x, x, batch_size=16, epochs=2, verbose=0, callbacks=[kiz.GradientNormLogger(tmp_path)]
    )
    images = _images(tmp_path)
    assert len(images) == 2  # one per epoch end (and train end at the same step)
    width, height, pixels = images[-1]
    groups = 10
    heat = _heat_area(pixels)
    assert heat.shape[0] % groups == 0
    cell = heat.shape[0] // groups
    rows = [heat[i * cell : (i + 1) * cell].reshape(-1, 3).mean(axis=0) for i in range(groups)]
    luminance = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in rows]
    assert luminance[0] < luminance[-1] - 50
    assert all(a <= b + 1 for a, b in zip(luminance, luminance[1:], strict=False))


def _on_viridis(pixels, tolerance=12):
    """Which pixels lie on the heatmap's palette (viridis, interpolated)."""
    from keras_initzoo.callbacks.views import colour

    curve = colour(np.linspace(0, 1, 256), 0, 1).astype(int)
    colours, index = np.unique(pixels.reshape(-1, 3), axis=0, return_inverse=True)
    near = np.abs(colours[:, None].astype(int) - curve[None]).max(axis=2).min(axis=1)
    return (near <= tolerance)[index.ravel()].reshape(pixels.shape[:2])


def _heat_box(pixels):
    """``(top, left, height, width)`` of the heatmap's cells: the first block of
    palette-coloured columns (the colour bar is the second, right of a white gap)."""
    on = _on_viridis(pixels)
    columns = np.flatnonzero(on.sum(axis=0) > on.shape[0] // 4)
    gaps = np.flatnonzero(np.diff(columns) > 1)
    first = columns[: gaps[0] + 1] if gaps.size else columns
    rows = np.flatnonzero(on[:, first].all(axis=1))
    return rows[0], first[0], rows[-1] + 1 - rows[0], first[-1] + 1 - first[0]


def _heat_area(pixels):
    top, left, height, width = _heat_box(pixels)
    return pixels[top : top + height, left : left + width]


def _images(log_dir):
    """``(width, height, pixels)`` of each heatmap event, decoded by TensorFlow's PNG decoder."""
    decoded = []
    for event in load_events(log_dir).Tensors("grad_norm_by_depth"):
        width, height, encoded = event.tensor_proto.string_val
        pixels = tf.io.decode_png(encoded).numpy()
        assert pixels.shape == (int(height), int(width), 3)
        decoded.append((int(width), int(height), pixels))
    return decoded


def test_layout_of_150_layers_is_readable():
    layout = RowLayout(tuple(f"dense_{i}" for i in range(150)), log_clipped=True)
    categories = charts(layout)
    first_charts = categories[0][1]
    assert first_charts[0] == (
        "global gradient norm",
        ["^grad_norm/global$", "^grad_norm_clipped/global$"],
    )
    lines = [len(tags) for _, chart_list in categories for _, tags in chart_list]
    assert max(lines) <= LINES_PER_CHART
    # depth order: the layer charts list the groups in order, each once
    tags = [t for _, t_list in first_charts[1:] for t in t_list]
    assert tags == [f"^grad_norm/dense_{i}$" for i in range(150)]
    assert [c for c, _ in categories] == [
        "keras_initzoo: gradient norms by depth",
        "keras_initzoo: gradient norms after clipping",
    ]


@pytest.mark.slow
def test_150_layer_model_writes_a_readable_layout(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,))] + [keras.layers.Dense(8, activation="relu") for _ in range(150)]
    )
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    model.fit(x, x, batch_size=16, verbose=0, callbacks=[kiz.GradientNormLogger(tmp_path)])
    acc = load_events(tmp_path)
    (event,) = acc.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    chart_tags = [list(c.multiline.tag) for cat in layout.category for c in cat.chart]
    assert chart_tags[0] == ["^grad_norm/global$"]
    assert max(len(t) for t in chart_tags) <= LINES_PER_CHART
    assert sum(len(t) for t in chart_tags[1:]) == 150
    _, _, pixels = _images(tmp_path)[-1]
    assert _heat_area(pixels).shape[0] == 150 * 3  # one 3-pixel row per layer (480 // 150)


def _wrapped_mobilenet():
    backbone = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35
    )
    return keras.Sequential(
        [backbone, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, name="head")]
    )


def test_blocks_of_a_wrapped_keras_applications_model():
    names = [g.name for g in resolve_layer_groups(_wrapped_mobilenet(), "block")]
    inside = "mobilenetv2_0.35_32/"
    assert [n for n in names if n.startswith(inside + "block_")] == [
        f"{inside}block_{i}" for i in range(1, 17)
    ]
    assert names[0] == inside + "Conv1" and names[-1] == "head"
    assert len(names) == 25  # 16 blocks, block 0's 4 layers, Conv1/Conv_1 and their BNs, head


class _Subclassed(keras.Model):
    """A subclassed model holding a list of auto-named blocks between auto-named Dense layers."""

    def __init__(self):
        super().__init__()
        self.stem = keras.layers.Dense(6)
        self.blocks = [Block() for _ in range(3)]
        self.head = keras.layers.Dense(1)

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_blocks_of_a_subclassed_model_are_named_the_same_in_every_build():
    names = []
    for _ in range(2):  # Keras numbers the second build's layers block_3..., dense_2...
        model = _Subclassed()
        model(np.zeros((2, 6), "float32"))
        names.append([g.name for g in resolve_layer_groups(model, "block")])
    assert names[0] == names[1] == ["dense", "block", "block_1", "block_2", "dense_1"]
    assert model.blocks[0].name != "block"  # the second build's own names did change


def test_block_names_keep_explicit_names_and_stay_distinct():
    keras.utils.set_random_seed(0)
    for _ in range(3):  # moves Keras' counter past block_1, so the names cannot clash
        Block()
    inputs = keras.Input((6,))
    x = Block(name="block_0")(inputs)  # Keras never numbers a name _0: the user's own
    x = Block(name="block_1")(x)  # a name Keras could have chosen: numbered like the others
    x = Block()(Block()(x))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(x))
    names = [g.name for g in resolve_layer_groups(model, "block")]
    assert names == ["block_0", "block_1", "block_2", "block_3", "head"]


@pytest.mark.slow
def test_blocks_of_a_keras_hub_backbone_inside_a_functional_model():
    keras_hub = pytest.importorskip("keras_hub")

    def build():
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=32,
            num_layers=3,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
            max_sequence_length=8,
        )
        inputs = {
            "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
            "padding_mask": keras.Input((None,), dtype="int32", name="padding_mask"),
        }
        logits = keras.layers.Dense(32, name="lm_head")(backbone(inputs))
        return keras.Model(inputs, logits)

    first, second = ([g.name for g in resolve_layer_groups(build(), "block")] for _ in range(2))
    assert (
        first
        == second
        == [
            "gpt2_backbone/token_embedding",
            "gpt2_backbone/position_embedding",
            "gpt2_backbone/transformer_layer_0",
            "gpt2_backbone/transformer_layer_1",
            "gpt2_backbone/transformer_layer_2",
            "gpt2_backbone/layer_norm",
            "lm_head",
        ]
    )


@pytest.mark.slow
def test_fine_tuning_a_wrapped_mobilenet_logs_one_tag_per_block(tmp_path):
    keras.utils.set_random_seed(0)
    model = _wrapped_mobilenet()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(8,))
    cb = kiz.GradientNormLogger(tmp_path, group_by="block")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[cb])
    tags = {t for t in load_events(tmp_path).Tags()["scalars"] if t.startswith("grad_norm/")}
    expected = {f"grad_norm/mobilenetv2_0.35_32/block_{i}" for i in range(1, 17)}
    assert expected <= tags
    assert len(tags) == 26  # global + the 25 groups


def test_depth_history_memory_stays_flat_over_a_million_rows():
    """1,000,000 logged rows of 50 groups: the kept columns stay under 2 * MAX_COLUMNS,
    evenly spaced from the first step, with the latest row drawn; the memory held does
    not grow with the rows (control: 1,000,000 rows kept would take 400 MB)."""
    import tracemalloc

    from keras_initzoo.callbacks.views import MAX_COLUMNS, DepthHistory

    history = DepthHistory([f"g{i}" for i in range(50)])
    row = np.ones(50)
    tracemalloc.start()
    for step in range(1, 100_001):
        history.add(step, row)
    after_100k = tracemalloc.get_traced_memory()[0]
    for step in range(100_001, 1_000_001):
        history.add(step, row)
    after_1m, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    steps = history.steps
    assert len(steps) <= 2 * MAX_COLUMNS + 1 and steps[0] == 1 and steps[-1] == 1_000_000
    gaps = np.diff(steps[:-1])
    assert gaps.min() == gaps.max()  # evenly spaced
    assert after_1m <= after_100k * 1.1 and peak < 2 * 2**20, (after_100k, after_1m, peak)
    logs, drawn = history.matrix()
    assert logs.shape == (50, MAX_COLUMNS) and drawn[-1] == 1_000_000


@pytest.mark.parametrize(
    ("typo", "meant"), [("blocks", "block"), ("layers", "layer"), ("Block", "block")]
)
def test_group_by_near_misses_are_refused_with_a_suggestion(typo, meant, tmp_path):
    with pytest.raises(ValueError, match=f"Did you mean '{meant}'"):
        kiz.GradientNormLogger(tmp_path, group_by=typo)
    # control: the same word as a compiled regex is taken
    assert kiz.GradientNormLogger(tmp_path, group_by=re.compile(typo)).group_by.pattern == typo


def _five_group_history(steps=5):
    from keras_initzoo.callbacks.views import DepthHistory

    history = DepthHistory(["dense_01", "dense_02", "dense_03", "dense_04", "output"])
    for step in range(1, steps + 1):
        history.add(step, np.array([0.00063, 0.003, 0.025, 0.16, 2.2]))
    return history


def test_a_five_group_heatmap_is_readable_with_labelled_axes():
    """5 groups, 5 logged steps: cells 48 px a side (a 240 x 240 heatmap), the layer names
    on the left, the steps and "logged step" below, the colour bar on the right, text in
    every margin. Control: before, the same history drew 80 x 80 pixels of cells, a colour
    bar and nothing else (no text: every pixel on the palette or the white gap)."""
    history = _five_group_history()
    pixels = history.image()
    top, left, height, width = _heat_box(pixels)
    assert (height, width) == (240, 240)
    ink = pixels.max(axis=2) < 128  # dark text on white (palette colours are brighter)
    ink &= ~_on_viridis(pixels)
    assert ink[top : top + 240, : left - 4].sum() > 200  # layer names and the axis label
    assert ink[top + 240 :, left : left + 240].sum() > 100  # steps and "logged step"
    assert ink[:top, left:].sum() > 100  # the title
    assert ink[top : top + 240, left + 240 + 24 :].sum() > 100  # the colour bar's numbers
    # The rows: one label per group; five groups of 48 px leave room for each.
    labels = [ink[top + i * 48 : top + (i + 1) * 48, : left - 4].any() for i in range(5)]
    assert labels == [True] * 5


def test_a_heatmap_caption_gives_the_scale_in_plain_numbers():
    """The caption TensorBoard shows: norms as people write them. Control: before, it read
    "from 1e-3.2 (dark blue) to 1e0.3 (yellow)" (a log10 exponent with a fraction)."""
    from keras_initzoo.callbacks.views import plain_number

    caption = _five_group_history().description()
    assert "from 0.00063 (dark blue) to 2.2 (yellow)" in caption, caption
    assert not re.search(r"1e-?\d+\.\d", caption)
    assert [plain_number(v) for v in (10**-0.5, 1.0, 3.1e-16)] == ["0.32", "1", "3.1e-16"]


def test_many_groups_keep_one_pixel_rows_and_readable_labels():
    """600 groups: one pixel per row, a label every so many rows (first and last named),
    long names shortened from the left."""
    from keras_initzoo.callbacks.views import DepthHistory

    names = [f"a_long_model_name/stage_{i // 100}/block_{i:03d}" for i in range(600)]
    history = DepthHistory(names)
    for step in range(1, 4):
        history.add(step, np.logspace(-6, 0, 600))
    pixels = history.image()
    assert _heat_area(pixels).shape[0] == 600
    assert pixels.shape[1] < 1000  # the names are cut to their ends, not drawn whole


def test_the_heatmap_png_is_indexed_and_decodes_to_the_drawn_pixels():
    """The summary's PNG is a palette image (a third of the bytes to compress), and
    TensorFlow's decoder reads back exactly :meth:`DepthHistory.image`: heat, NaN red,
    zero black, text. Control: shifting the palette by one entry fails the comparison."""
    import struct

    from keras_initzoo.callbacks import views

    history = _five_group_history()
    history.add(6, np.array([np.nan, 0.0, 0.025, 0.16, 2.2]))
    encoded = history.image_summary().value[0].tensor.string_val[2]
    assert struct.unpack(">B", encoded[25:26]) == (3,)  # IHDR colour type 3: indexed
    decoded = tf.io.decode_png(encoded, channels=3).numpy()
    pixels = history.image()
    np.testing.assert_array_equal(decoded, pixels)
    assert (pixels.reshape(-1, 3) == (255, 0, 0)).all(axis=1).any()
    assert (pixels.reshape(-1, 3) == (0, 0, 0)).all(axis=1).any()
    shifted = views.png(history._indexed(), np.roll(views._INDEXED_PALETTE, 1, axis=0))
    assert not np.array_equal(tf.io.decode_png(shifted, channels=3).numpy(), pixels)

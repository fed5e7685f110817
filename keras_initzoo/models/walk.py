"""Every kernel of a built model, with the fans its layer gives it.

A kernel's shape alone can mislead :func:`keras_initzoo.fans.compute_fans`,
which assumes the layout ``(*receptive_field, in, out)``. The layer knows
better, so :func:`walk` asks it:

====================  ========================  =====================================
layer                 kernel                    fans (``k = prod(kernel_size)``)
====================  ========================  =====================================
Dense                 ``(in, out)``             ``(in, out)``
EinsumDense           from ``equation``         :func:`einsum_axes`
ConvND, ``groups=g``  ``(*k, in/g, out)``       ``(k in/g, k out/g)``: ``g`` blocks
ConvNDTranspose       ``(*k, out, in)``         ``(k in, k out)``
DepthwiseConvND       ``(*k, C, M)``            ``(k, k M)``
SeparableConvND       depthwise, pointwise      as depthwise, ``(C M, out)``
Embedding             ``(vocab, dim)``          ``(1, dim)``
PositionEmbedding     ``(length, dim)``         ``(1, dim)`` (KerasHub's)
LSTM, GRU, SimpleRNN  ``(in, G units)``         ``(in, units)``: ``G`` gate blocks
  (and ConvLSTM)      ``(units, G units)``      ``(units, units)``
====================  ========================  =====================================

``MultiHeadAttention`` is four ``EinsumDense`` layers, so its query kernel
``(model_dim, heads, key_dim)`` gets ``fan_in = model_dim`` and its output
kernel ``(heads, key_dim, model_dim)`` ``fan_in = heads * key_dim``.

An embedding's input is a one-hot vector: ``x W`` selects one row of ``W``,
so each output sums a single term and ``fan_in = 1``; ``fan_out = dim``
counts the units each input feeds.

A kernel of ``blocks`` stacked independent kernels (an LSTM's four gates, a
grouped convolution's groups) gets the fans of one block,
``shape[:-1] + (shape[-1] // blocks,)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import keras

from keras_initzoo import _keras_internals as internals
from keras_initzoo.fans import compute_fans, conv_transpose_axes, depthwise_axes

L = keras.layers

# Gates stacked on the last axis of a recurrent cell's kernels.
GATES = {L.LSTMCell: 4, L.GRUCell: 3, L.SimpleRNNCell: 1, internals.CONV_LSTM_CELL: 4}

_CONV = (L.Conv1D, L.Conv2D, L.Conv3D)
_CONV_TRANSPOSE = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
_SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)
# Layers that normalize a signal: their output's scale is their own (gamma), not their input's.
NORMALIZATION = tuple(
    getattr(L, name)
    for name in (
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "UnitNormalization",
    )
    if hasattr(L, name)
)
# ... and those whose trainable variables are a normalization's, not kernels
_NORMALIZATION = (
    *NORMALIZATION,
    *((L.SpectralNormalization,) if hasattr(L, "SpectralNormalization") else ()),
)

Skip = None | str | Callable[[keras.layers.Layer], bool] | Iterable[str]


@dataclass(frozen=True, eq=False)
class KernelSite:
    """One kernel: its variable, the layer that owns it and its true fans.

    ``role`` is ``"kernel"``, ``"recurrent_kernel"``, ``"depthwise_kernel"``,
    ``"pointwise_kernel"``, ``"embeddings"`` or ``"reverse_embeddings"``
    (KerasHub's untied output projection). ``fan_in`` and ``fan_out`` are
    those of one of the ``blocks`` kernels stacked on the last axis.

    Attributes:
        path: the variable's path in the model, e.g. ``"block1_conv/kernel"``.
        layer: the layer that owns the variable.
        variable: the kernel itself, a ``keras.Variable``.
        role: which kernel of its layer it is, one of the names above.
        fan_in: the fan-in of one block, as the layer sees it (a depthwise
            kernel's is its receptive field, an ``EinsumDense`` kernel's comes
            from its equation).
        fan_out: the fan-out of one block.
        blocks: how many kernels are stacked on the last axis, an integer
            >= 1 (default 1; an LSTM's ``kernel`` holds 4, one per gate).
        note: how the fans were read, for the report: the layout, e.g.
            ``"(*k, in, out)"``, or ``"4 gates, fans per gate"`` (default ``""``).
    """

    path: str
    layer: keras.layers.Layer = field(repr=False)
    variable: keras.Variable = field(repr=False)
    role: str
    fan_in: int
    fan_out: int
    blocks: int = 1
    note: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.variable.shape)

    @property
    def block_shape(self) -> tuple[int, ...]:
        """The shape of one of the ``blocks`` kernels: ``shape[-1]`` divided by ``blocks``."""
        return (*self.shape[:-1], self.shape[-1] // self.blocks)


@dataclass(frozen=True, eq=False)
class LeftAlone:
    """Variables of one layer that are not kernels, or a skipped layer, and why.

    Attributes:
        path: the layer's path in the model.
        layer: the layer.
        variables: the names of the variables left alone.
        reason: why, in words (a normalization's scale, a layer ``skip`` named).
    """

    path: str
    layer: keras.layers.Layer = field(repr=False)
    variables: tuple[str, ...]
    reason: str

    @property
    def why(self) -> str:
        """The variables (or their count) and the reason, for a report's note."""
        names = self.variables
        listed = ", ".join(names) if len(names) <= 4 else f"{len(names)} variables"
        return f"{listed}: {self.reason}"

    def __str__(self) -> str:
        return f"{self.path} ({type(self.layer).__name__}): {self.why}"


@dataclass(frozen=True, eq=False)
class Walk:
    """What :func:`walk` found: kernels in forward order, biases, and what it left alone.

    Attributes:
        kernels: one :class:`KernelSite` per kernel, in forward (call) order.
        biases: the biases of the layers whose kernels were found.
        left_alone: one :class:`LeftAlone` per layer with variables that are
            not kernels, or that ``skip`` named.
    """

    kernels: tuple[KernelSite, ...]
    biases: tuple[keras.Variable, ...] = field(repr=False)
    left_alone: tuple[LeftAlone, ...]

    @property
    def notes(self) -> list[tuple[str, str]]:
        """``(layer path, what was left alone and why)`` for each entry of ``left_alone``."""
        return [(entry.path, entry.why) for entry in self.left_alone]


def einsum_axes(equation: str) -> dict[str, list[int]]:
    """The input and output axes of an ``EinsumDense`` kernel, from its ``equation``.

    In ``"<input>,<kernel>-><output>"`` (``...`` allowed in the input and
    output) a kernel letter found only in the input is summed over: an input
    axis. One found only in the output is an output axis. One found in both
    indexes independent kernels (a batch axis) and counts in neither fan.

    Args:
        equation: the layer's ``equation``, e.g. ``"abc,cde->abde"``.

    Returns:
        ``{"input_axes": [...], "output_axes": [...]}``, kernel axes to pass to
        :func:`keras_initzoo.compute_fans` or a fan-scaled initializer.

    Raises:
        ValueError: for an equation not of that form.

    Examples:
        >>> einsum_axes("abc,cde->abde")          # MultiHeadAttention's query
        {'input_axes': [0], 'output_axes': [1, 2]}
        >>> einsum_axes("...b,bc->...c")
        {'input_axes': [0], 'output_axes': [1]}
        >>> einsum_axes("abc,acd->abd")           # a per-``a`` kernel
        {'input_axes': [1], 'output_axes': [2]}
    """
    match = re.fullmatch(r"([a-zA-Z.]+),([a-zA-Z]+)->([a-zA-Z.]+)", equation.replace(" ", ""))
    if match is None:
        raise ValueError(
            "`equation` must read '<input>,<kernel>-><output>' in letters, with '...' allowed "
            f"in the input and output; received equation={equation!r}."
        )
    inputs, kernel, outputs = (term.replace("...", "") for term in match.groups())
    axes: dict[str, list[int]] = {"input_axes": [], "output_axes": []}
    for axis, letter in enumerate(kernel):
        if (letter in inputs) != (letter in outputs):
            axes["input_axes" if letter in inputs else "output_axes"].append(axis)
        elif letter not in inputs:
            raise ValueError(
                f"Kernel letter {letter!r} of `equation` appears in neither the input nor the "
                f"output; received equation={equation!r}."
            )
    return axes


def _rule(layer: keras.layers.Layer, name: str, shape: tuple[int, ...]) -> tuple | None:
    """``(role, (fan_in, fan_out), blocks, note)`` for a variable ``name`` of ``layer``."""
    rank = len(shape) - 2  # spatial rank of a convolution kernel
    if isinstance(layer, L.EinsumDense) and name == "kernel":
        return "kernel", compute_fans(shape, **einsum_axes(layer.equation)), 1, layer.equation
    if isinstance(layer, L.Dense) and name == "kernel":
        return "kernel", compute_fans(shape), 1, "(in, out)"
    if isinstance(layer, _CONV) and name == "kernel":
        groups = layer.groups
        note = f"groups={groups}, fans per group" if groups > 1 else "(*k, in, out)"
        return "kernel", compute_fans((*shape[:-1], shape[-1] // groups)), groups, note
    if isinstance(layer, _CONV_TRANSPOSE) and name == "kernel":
        return "kernel", compute_fans(shape, **conv_transpose_axes(rank)), 1, "(*k, out, in)"
    if (isinstance(layer, _DEPTHWISE) and name in ("kernel", "depthwise_kernel")) or (
        isinstance(layer, _SEPARABLE) and name == "depthwise_kernel"
    ):
        fans = compute_fans(shape, **depthwise_axes(rank))
        return "depthwise_kernel", fans, 1, "depthwise: one input channel per output"
    if isinstance(layer, _SEPARABLE) and name == "pointwise_kernel":
        return "pointwise_kernel", compute_fans(shape), 1, "(1, C*M, out)"
    if isinstance(layer, L.Embedding) and name == "embeddings":
        # One-hot input: each output is one row entry, so fan_in = 1.
        fans = compute_fans(shape, input_axes=[], output_axes=[1])
        return "embeddings", fans, 1, "one-hot rows: fan_in = 1"
    if type(layer).__name__ == "PositionEmbedding" and name == "embeddings":
        # KerasHub's learned positions: a one-hot position selects a row, as a token does
        fans = compute_fans(shape, input_axes=[], output_axes=[1])
        return "embeddings", fans, 1, "one-hot positions: fan_in = 1"
    if isinstance(layer, L.Embedding) and name == "reverse_embeddings":
        return "reverse_embeddings", compute_fans(shape), 1, "(dim, vocab)"
    gates = next((n for cls, n in GATES.items() if isinstance(layer, cls)), None)
    if gates is not None and name in ("kernel", "recurrent_kernel"):
        layout = "(in, units)" if name == "kernel" else "(units, units)"
        note = f"{gates} gates, fans per gate" if gates > 1 else layout
        return name, compute_fans((*shape[:-1], shape[-1] // gates)), gates, note
    return None


def _skip_predicate(skip: Skip) -> tuple[Callable[[keras.layers.Layer, str], bool], set[str]]:
    """A test ``(layer, path) -> bool`` and the names it must match at least once."""
    if skip is None:
        return (lambda layer, path: False), set()
    if isinstance(skip, str):
        try:
            pattern = re.compile(skip)
        except re.error as error:
            raise ValueError(
                f"`skip` is not a valid regex ({error}); received skip={skip!r}."
            ) from None
        return (lambda layer, path: pattern.search(path) is not None), set()
    if callable(skip):
        return (lambda layer, path: bool(skip(layer))), set()
    if isinstance(skip, Iterable) and not isinstance(skip, (bytes, dict)):
        names = set(skip)
        if all(isinstance(name, str) for name in names):
            return (lambda layer, path: layer.name in names or path in names), names
    raise ValueError(
        "`skip` must be None, a regex searched in each layer's path, a callable "
        f"(layer) -> bool or a list of layer names or paths; received skip={skip!r}."
    )


def walk(model: keras.layers.Layer, skip: Skip = None) -> Walk:
    """Finds every kernel of a built ``model`` and its true fans (see the module's table).

    Layers are visited depth first in the order the model tracks them (the
    forward order of a functional or Sequential model, attribute order in a
    subclassed one), through nested models, wrappers (``Bidirectional``,
    ``TimeDistributed``) and layers that hold layers (attention, KerasHub
    blocks). A shared layer or variable counts once. Frozen layers are
    walked too; ``skip=lambda layer: not layer.trainable`` leaves them out.

    Of each layer's own variables, those its rule names are kernels, any named
    ``bias`` is a bias, and the other trainable ones (a normalization's
    ``gamma``/``beta``, anything of a layer class without a rule, a quantized
    kernel) are reported in ``left_alone`` with the reason; non-trainable
    state (moving averages) is not mentioned.

    Examples:
        >>> model = keras.Sequential([keras.Input((8, 16)), keras.layers.LSTM(32)])
        >>> [(k.role, k.fan_in, k.fan_out, k.blocks) for k in walk(model).kernels]
        [('kernel', 16, 32, 4), ('recurrent_kernel', 32, 32, 4)]

    Args:
        model: a built ``keras.Model`` or layer.
        skip: layers to leave alone, with everything inside them: None; a
            regex searched in each layer's path (``"attention"``); a callable
            ``(layer) -> bool``; or a list of layer names or paths, each of
            which must exist. Default None: every layer is walked.

    Returns:
        A :class:`Walk`: the kernels with their fans, the biases and what was
        left alone.

    Raises:
        ValueError: if ``model`` is not a built Keras model or layer, ``skip``
            is of another type, or a name in ``skip`` matches no layer.
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "`model` must be a built keras.Model or keras.layers.Layer; "
            f"received model={model!r} of type {type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            f"`model` ({model.name}) is not built, so it has no weights yet: build it first, "
            "e.g. give it a keras.Input or call it on a batch of data."
        )
    skipped, wanted = _skip_predicate(skip)
    matched: set[str] = set()
    kernels: list[KernelSite] = []
    biases: list[keras.Variable] = []
    left_alone: list[LeftAlone] = []
    seen_layers: set[int] = set()
    seen_variables: set[int] = set()

    def fresh(variables) -> list:
        new = [v for v in variables if id(v) not in seen_variables]
        seen_variables.update(id(v) for v in new)
        return new

    def visit(layer: keras.layers.Layer, parent: str) -> None:
        if id(layer) in seen_layers:
            return
        seen_layers.add(id(layer))
        path = layer.path or (f"{parent}/{layer.name}" if parent else layer.name)
        if layer is not model and skipped(layer, path):
            matched.update({layer.name, path} & wanted)
            variables = tuple(v.path for v in fresh(layer.weights))
            if variables:
                left_alone.append(LeftAlone(path, layer, variables, "skipped"))
            return
        children = internals.flatten_layers(layer, include_self=False, recursive=False)
        inner = {id(v) for child in children for v in child.weights}
        unknown, has_rule = [], False
        for variable in fresh(v for v in layer.weights if id(v) not in inner):
            name = variable.name
            rule = _rule(layer, name, tuple(variable.shape))
            has_rule = has_rule or rule is not None
            if rule is not None and "float" not in str(variable.dtype):
                left_alone.append(
                    LeftAlone(path, layer, (name,), f"dtype {variable.dtype}, quantized")
                )
            elif rule is not None:
                role, (fan_in, fan_out), blocks, note = rule
                kernels.append(
                    KernelSite(variable.path, layer, variable, role, fan_in, fan_out, blocks, note)
                )
            elif name == "bias":
                biases.append(variable)
            elif variable.trainable:
                unknown.append(name)
        if unknown:
            if isinstance(layer, _NORMALIZATION):
                reason = "normalization scale and offset, not kernels"
            elif has_rule:  # e.g. LoRA factors beside a known kernel
                reason = f"no known fan rule for these variables of {type(layer).__name__}"
            else:
                reason = f"no known fan rule for layer class {type(layer).__name__}"
            left_alone.append(LeftAlone(path, layer, tuple(unknown), reason))
        for child in children:
            # A functional model's layers are named without the model's prefix.
            visit(child, path if layer is not model else "")

    visit(model, "")
    if wanted - matched:
        raise ValueError(
            f"`skip` names no layer of the model: {sorted(wanted - matched)}; "
            "give layer names or paths (or a regex)."
        )
    return Walk(tuple(kernels), tuple(biases), tuple(left_alone))

"""How ``torch.nn`` initializes each layer, for Keras models ported from PyTorch.

:func:`keras_initzoo.reinitialize` with ``"zoo_torch"`` draws each kernel as
the ``reset_parameters`` of the layer's ``torch.nn`` counterpart draws its
weight, and with ``biases="torch"`` each bias, normalization scale and offset
likewise: the same distributions, not the same numbers. :data:`RULES` is the
table (the README's *Porting from PyTorch* prints it, from
:func:`markdown_table`); each rule names its source in PyTorch
(``torch/nn/modules/...``). Bounds use PyTorch's ``fan_in``, the product of
its weight's dimensions after the first (``_calculate_fan_in_and_fan_out``):

- ``Dense``, ``Conv*`` (grouped too), ``EinsumDense``: the walk's ``fan_in``
  (:mod:`keras_initzoo.models.walk`) is PyTorch's;
- ``Conv*Transpose``: PyTorch's weight is ``(in, out / groups, *k)``, so its
  ``fan_in`` is ``k * out / groups``, not the true ``k * in``;
- depthwise and separable convolutions: PyTorch writes them as
  ``nn.Conv*d(C, C * M, k, groups=C)`` (``fan_in = k``), then for separable
  a pointwise ``nn.Conv*d(C * M, out, 1)`` (``fan_in = C * M``) that holds
  Keras' one bias;
- recurrent layers: every weight and bias ``U[-1/sqrt(units), 1/sqrt(units)]``;
  PyTorch adds two biases (``b_ih + b_hh``) where Keras has one, so that bias
  is the sum of two such uniforms (triangular on ``[-2/sqrt(units),
  2/sqrt(units)]``, variance ``2 / (3 units)``). Keras' GRU with
  ``reset_after=True`` keeps both, as its bias' two rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import keras

from keras_initzoo import _keras_internals as internals
from keras_initzoo.initializers.simple import StandardNormal
from keras_initzoo.initializers.variance_scaling import (
    GlorotUniform,
    TorchDefault,
    VarianceScaling,
)
from keras_initzoo.models.walk import _NORMALIZATION, KernelSite, Walk

L = keras.layers

# The zoo scheme behind each random kind of draw.
_SCHEMES = {"uniform": TorchDefault, "xavier_uniform": GlorotUniform, "normal": StandardNormal}


@functools.cache
def _formula(kind: str) -> VarianceScaling:
    """One instance per kind, for its variance formula; never drawn from."""
    return _SCHEMES[kind](seed=0)


@dataclass(frozen=True)
class Draw:
    """One parameter's distribution, as ``torch.nn`` draws it.

    ``kind`` is ``"uniform"`` (``U[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, drawn
    by :class:`TorchDefault`), ``"xavier_uniform"`` (:class:`GlorotUniform`
    with ``fan_in``, ``fan_out``), ``"normal"`` (``N(0, 1)``) or
    ``"constant"`` (``value``). ``terms`` independent draws are summed
    (PyTorch's ``b_ih + b_hh`` in one Keras bias).

    Examples:
        >>> lstm_bias = Draw("uniform", fan_in=64, terms=2)
        >>> lstm_bias.bound, round(lstm_bias.variance * 3 * 64, 9)   # 2/sqrt(64); 2 / (3 units)
        (0.25, 2.0)
    """

    kind: str
    fan_in: int | None = None
    fan_out: int | None = None
    terms: int = 1
    value: float = 0.0

    @property
    def variance(self) -> float:
        """The variance of the values drawn (of their sum, for ``terms > 1``)."""
        if self.kind == "normal":
            return 1.0
        if self.kind == "constant":
            return 0.0
        single = _formula(self.kind).variance_for_fans(self.fan_in, self.fan_out or self.fan_in)
        return self.terms * single

    @property
    def bound(self) -> float:
        """The largest ``|value|`` the distribution reaches (inf for the normal)."""
        if self.kind == "normal":
            return math.inf
        if self.kind == "constant":
            return abs(self.value)
        return self.terms * math.sqrt(3.0 * self.variance / self.terms)

    def sample(self, shape: tuple[int, ...], dtype: str, seed: keras.random.SeedGenerator):
        """A tensor of ``shape`` and ``dtype`` drawn from ``seed``'s stream.

        Args:
            shape: the parameter's shape.
            dtype: its floating-point dtype.
            seed: the ``keras.random.SeedGenerator`` to draw from.

        Returns:
            The drawn tensor (the sum of ``terms`` draws).
        """
        if self.kind == "constant":
            return keras.ops.full(shape, self.value, dtype=dtype)
        init = _SCHEMES[self.kind](seed=seed)
        draws = [
            init.draw_for_fans(shape, dtype, self.fan_in, self.fan_out or self.fan_in)
            if isinstance(init, VarianceScaling)
            else init(shape, dtype=dtype)
            for _ in range(self.terms)
        ]
        return draws[0] if self.terms == 1 else keras.ops.sum(keras.ops.stack(draws), axis=0)

    def describe(self) -> str:
        """The distribution in words, for a report's note."""
        if self.kind == "uniform":
            single = f"U[±1/√{self.fan_in}]"
            return single if self.terms == 1 else f"sum of {self.terms} {single}"
        if self.kind == "xavier_uniform":
            return f"xavier U[±√(6/({self.fan_in}+{self.fan_out}))]"
        if self.kind == "normal":
            return "N(0, 1)"
        return f"constant {self.value:g}"


ZEROS = Draw("constant", value=0.0)
ONES = Draw("constant", value=1.0)


def _linear(site: KernelSite) -> Draw:
    return Draw("uniform", fan_in=site.fan_in)


def _conv_transpose(site: KernelSite) -> Draw:
    # Keras (*k, out, in); PyTorch (in, out / groups, *k) counts dimension 1 as fan_in.
    return Draw("uniform", fan_in=math.prod(site.shape[:-2]) * site.shape[-2])


def _separable_bias(site: KernelSite) -> Draw:
    # The bias follows the pointwise (1, ..., 1, C*M, out) convolution.
    pointwise = site.layer.pointwise_kernel.shape
    return Draw("uniform", fan_in=math.prod(pointwise[:-1]))


def _embedding(site: KernelSite) -> Draw:
    if site.role == "reverse_embeddings":  # an untied output projection: nn.Linear(dim, vocab)
        return _linear(site)
    return Draw("normal")


def _recurrent(site: KernelSite) -> Draw:
    return Draw("uniform", fan_in=site.layer.units)


def _recurrent_bias(site: KernelSite) -> Draw:
    # (units * gates,): b_ih + b_hh in one; GRU(reset_after=True) keeps them as 2 rows.
    terms = 1 if len(site.layer.bias.shape) == 2 else 2
    return Draw("uniform", fan_in=site.layer.units, terms=terms)


def _attention_kernel(site: KernelSite, attention: L.MultiHeadAttention) -> Draw:
    if site.layer is attention.output_dense:  # out_proj: an nn.Linear
        return _linear(site)
    projections = [attention.query_dense, attention.key_dense, attention.value_dense]
    inputs = {dense.kernel.shape[0] for dense in projections}
    outputs = {math.prod(dense.kernel.shape[1:]) for dense in projections}
    # PyTorch stacks q, k, v in one (3E, E) in_proj_weight when their sizes agree.
    stacked = 3 if len(inputs) == 1 and len(outputs) == 1 else 1
    return Draw("xavier_uniform", fan_in=site.fan_in, fan_out=stacked * site.fan_out)


@dataclass(frozen=True)
class TorchRule:
    """One row of the table: a Keras layer family and how its torch counterpart initializes.

    ``kernel`` and ``bias`` map a kernel of that layer (its
    :class:`KernelSite`) to the :class:`Draw` of that kernel and of the
    layer's bias; ``parameters`` gives the draws of other variables by name
    (normalization scales and offsets).
    """

    classes: tuple[type, ...]
    keras_layers: str
    torch: str
    weight: str
    bias_rule: str
    source: str
    kernel: Callable[[KernelSite], Draw] | None = None
    bias: Callable[[KernelSite], Draw] | None = None
    parameters: Mapping[str, Draw] = field(default_factory=dict)


_NORMALIZATION_PARAMETERS = MappingProxyType(
    {"gamma": ONES, "scale": ONES, "beta": ZEROS, "moving_mean": ZEROS, "moving_variance": ONES}
)

# No class here subclasses another, so the order is the README's.
RULES: tuple[TorchRule, ...] = (
    TorchRule(
        (L.Dense, L.EinsumDense),
        "Dense, EinsumDense",
        "nn.Linear",
        "U[±1/√fan_in] (kaiming_uniform_, a=√5)",
        "U[±1/√fan_in]",
        "linear.py: Linear.reset_parameters",
        _linear,
        _linear,
    ),
    TorchRule(
        (L.Conv1D, L.Conv2D, L.Conv3D),
        "Conv{1,2,3}D",
        "nn.Conv{1,2,3}d",
        "U[±1/√(k·in/groups)]",
        "U[±1/√(k·in/groups)]",
        "conv.py: _ConvNd.reset_parameters",
        _linear,
        _linear,
    ),
    TorchRule(
        (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose),
        "Conv{1,2,3}DTranspose",
        "nn.ConvTranspose{1,2,3}d",
        "U[±1/√(k·out/groups)]: torch's weight is (in, out/groups, *k)",
        "U[±1/√(k·out/groups)]",
        "conv.py: _ConvNd.reset_parameters",
        _conv_transpose,
        _conv_transpose,
    ),
    TorchRule(
        (L.DepthwiseConv1D, L.DepthwiseConv2D),
        "DepthwiseConv{1,2}D",
        "nn.Conv{1,2}d(groups=C)",
        "as nn.Conv{1,2}d(C, C·M, k, groups=C): U[±1/√k]",
        "U[±1/√k]",
        "conv.py: _ConvNd.reset_parameters",
        _linear,
        _linear,
    ),
    TorchRule(
        (L.SeparableConv1D, L.SeparableConv2D),
        "SeparableConv{1,2}D",
        "nn.Conv{1,2}d(groups=C), then a 1×1 nn.Conv{1,2}d",
        "depthwise, as nn.Conv{1,2}d(C, C·M, k, groups=C, bias=False): U[±1/√k]; "
        "pointwise, as nn.Conv{1,2}d(C·M, out, 1): U[±1/√(C·M)]",
        "U[±1/√(C·M)] (the pointwise conv's)",
        "conv.py: _ConvNd.reset_parameters",
        _linear,
        _separable_bias,
    ),
    TorchRule(
        (L.Embedding,),
        "Embedding",
        "nn.Embedding",
        "N(0, 1) (an untied reverse_embeddings: as nn.Linear)",
        "—",
        "sparse.py: Embedding.reset_parameters",
        _embedding,
    ),
    TorchRule(
        (L.LSTMCell, L.GRUCell, L.SimpleRNNCell),
        "LSTM, GRU, SimpleRNN",
        "nn.LSTM, nn.GRU, nn.RNN",
        "kernel and recurrent_kernel U[±1/√units]",
        "b_ih + b_hh: sum of two U[±1/√units] (GRU reset_after=True: its two rows, "
        "each U[±1/√units])",
        "rnn.py: RNNBase.reset_parameters",
        _recurrent,
        _recurrent_bias,
    ),
    TorchRule(
        (L.MultiHeadAttention,),
        "MultiHeadAttention",
        "nn.MultiheadAttention",
        "query, key, value: Xavier uniform over the stacked (3E, E) in_proj_weight "
        "(fan_in E, fan_out 3E; each (E, d) alone when their sizes differ); output: as nn.Linear",
        "zeros",
        "activation.py: MultiheadAttention._reset_parameters; linear.py for out_proj",
    ),
    TorchRule(
        _NORMALIZATION,
        "BatchNormalization, LayerNormalization, GroupNormalization, RMSNormalization",
        "nn.BatchNorm*d, LayerNorm, GroupNorm, RMSNorm",
        "scale (gamma) ones; moving mean 0, moving variance 1",
        "offset (beta) zeros",
        "batchnorm.py: _NormBase.reset_parameters; normalization.py: reset_parameters",
        parameters=_NORMALIZATION_PARAMETERS,
    ),
    TorchRule(
        (L.PReLU,),
        "PReLU",
        "nn.PReLU",
        "alpha 0.25",
        "—",
        "activation.py: PReLU.reset_parameters",
        parameters=MappingProxyType({"alpha": Draw("constant", value=0.25)}),
    ),
)

# Kernels of layers with no torch.nn counterpart (ConvLSTM) draw as nn.Linear, with the walk's fans.
FALLBACK = TorchRule(
    (),
    "any other kernel",
    "none: as nn.Linear",
    "U[±1/√fan_in], the walk's fan_in",
    "U[±1/√fan_in]",
    "linear.py: Linear.reset_parameters",
    _linear,
    _linear,
)
_ATTENTION = next(rule for rule in RULES if L.MultiHeadAttention in rule.classes)


def rule_for(layer: keras.layers.Layer) -> TorchRule | None:
    """The first rule of :data:`RULES` for ``layer``'s class, or None."""
    return next((rule for rule in RULES if isinstance(layer, rule.classes)), None)


@dataclass(frozen=True, eq=False)
class TorchParameter:
    """One variable to draw as torch would: its path, layer, :class:`Draw` and rule."""

    path: str
    layer: keras.layers.Layer | None = field(repr=False)
    variable: keras.Variable = field(repr=False)
    role: str
    draw: Draw
    note: str

    def assign(self, seed: keras.random.SeedGenerator) -> float:
        """Draws the variable in place; returns the variance of what it now holds."""
        variable = self.variable
        variable.assign(self.draw.sample(tuple(variable.shape), variable.dtype, seed))
        values = keras.ops.convert_to_numpy(variable.value).astype("float64")
        return float(values.var())


def _layers(model: keras.layers.Layer) -> Iterable[keras.layers.Layer]:
    """``model`` and every layer inside it (Keras' own traversal, as :func:`walk`'s)."""
    return internals.flatten_layers(model, include_self=True, recursive=True)


def _attention_owners(model: keras.layers.Layer) -> dict[int, L.MultiHeadAttention]:
    """``id(projection) -> attention`` for the four EinsumDense of each MultiHeadAttention."""
    owners = {}
    for layer in _layers(model):
        if isinstance(layer, L.MultiHeadAttention):
            for dense in (layer.query_dense, layer.key_dense, layer.value_dense):
                owners[id(dense)] = layer
            owners[id(layer.output_dense)] = layer
    return owners


def _note(rule: TorchRule, draw: Draw) -> str:
    return f"{rule.torch}: {draw.describe()}"


def kernel_parameters(model: keras.layers.Layer, found: Walk) -> list[TorchParameter]:
    """Each kernel of ``found`` (in its order) with the draw of its torch counterpart."""
    owners = _attention_owners(model)
    parameters = []
    for site in found.kernels:
        attention = owners.get(id(site.layer))
        if attention is not None:
            rule, draw = _ATTENTION, _attention_kernel(site, attention)
        else:
            rule = rule_for(site.layer) or FALLBACK
            rule = rule if rule.kernel is not None else FALLBACK
            draw = rule.kernel(site)
        parameters.append(
            TorchParameter(site.path, site.layer, site.variable, site.role, draw, _note(rule, draw))
        )
    return parameters


def other_parameters(model: keras.layers.Layer, found: Walk) -> list[TorchParameter]:
    """The biases of ``found`` and the normalization (and PReLU) variables, drawn as torch's.

    A bias takes its layer's rule, with the fans of that layer's kernel (for a
    separable convolution, the pointwise one); an attention projection's bias
    is zero, as in ``nn.MultiheadAttention``, and a bias of a layer with no
    kernel found is set to zero, with a note. Variables of skipped layers are
    left alone.
    """
    owners = _attention_owners(model)
    bias_ids = {id(v) for v in found.biases}
    site_of: dict[int, KernelSite] = {}
    for site in found.kernels:
        for variable in site.layer.weights:
            if id(variable) in bias_ids and (
                id(variable) not in site_of or site.role == "pointwise_kernel"
            ):
                site_of[id(variable)] = site
    parameters = []
    for variable in found.biases:
        site = site_of.get(id(variable))
        if site is None:
            parameters.append(
                TorchParameter(
                    variable.path, None, variable, "bias", ZEROS, "no kernel in its layer: zeros"
                )
            )
            continue
        if id(site.layer) in owners:
            rule, draw = _ATTENTION, ZEROS
        else:
            rule = rule_for(site.layer) or FALLBACK
            rule = rule if rule.bias is not None else FALLBACK
            draw = rule.bias(site)
        parameters.append(
            TorchParameter(variable.path, site.layer, variable, "bias", draw, _note(rule, draw))
        )
    skipped = {
        path for entry in found.left_alone if entry.reason == "skipped" for path in entry.variables
    }
    seen = set()
    for layer in _layers(model):
        rule = rule_for(layer)
        if rule is None or not rule.parameters:
            continue
        for variable in layer.weights:
            draw = rule.parameters.get(variable.name)
            if draw is None or variable.path in skipped or id(variable) in seen:
                continue
            seen.add(id(variable))
            parameters.append(
                TorchParameter(
                    variable.path, layer, variable, variable.name, draw, _note(rule, draw)
                )
            )
    return parameters


def markdown_table() -> str:
    """The README's table of :data:`RULES` (and the fallback)."""
    lines = [
        "| Keras layer | torch counterpart | weight | bias | source (`torch/nn/modules/`) |",
        "|---|---|---|---|---|",
    ]
    for rule in (*RULES, FALLBACK):
        cells = (rule.keras_layers, rule.torch, rule.weight, rule.bias_rule, rule.source)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # prints the README's table
    print(markdown_table())

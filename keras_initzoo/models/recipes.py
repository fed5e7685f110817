"""The literature's deep-residual initializations, applied in place to a built model.

Each recipe is one paper's rule for a network of residual blocks, read from
the paper's reference code. :func:`apply_recipe` finds the residual stream of
any built model (Sequential, functional, subclassed, KerasHub backbones built
from configs) with one probed forward pass
(:func:`~keras_initzoo.models.residual.trace`): every join ``x + f(x)``, each
branch's kernel layers in call order and its last weighted layer, the
projection shortcuts, the block each join belongs to; and every kernel's true
fans (:func:`~keras_initzoo.models.walk.walk`). It then re-draws (or zeroes,
or rescales) the variables the recipe names, through keras_initzoo's own
initializers, and returns a :class:`~keras_initzoo.models.report.Report`
with one row per variable touched.

Words used below: the model has ``L`` residual branches (joins); a *block*
holds one or more of them (a transformer layer holds an attention and an MLP
branch), ``N`` blocks in all, ``l`` the 0-based index of a block; a branch
holds ``m`` kernel layers, its *end* is the last of them; the *classifier* is
the last kernel layer outside every branch when the model's outputs come from
it. A sum of embeddings (KerasHub's token + position embedding) is not a
residual branch: the probe leaves it out, and so do the recipes.

What a built model does not allow, and what the recipes do instead:

* parameters a paper adds (Fixup's scalar biases and multiplier, SkipInit's
  gate, DeepNorm's skip multiplier ``alpha``) cannot be inserted into a built
  model; :class:`keras_initzoo.layers.ResidualGain` adds a gate when the model
  is built with it, and DeepNorm's ``alpha`` is folded into the branch (below);
* layers a paper removes (T-Fixup's LayerNorms) stay where they are;
* NF nets' activation gain and weight standardization, applied in every call
  in the paper, are applied once to the kernels' initial values (``nf``);
  :class:`keras_initzoo.layers.WSDense` and ``WSConv2D`` keep them in training.

The rules, recipe by recipe (``RECIPES``; ``recipes_table()`` prints them):

``fixup``
    Zhang, Dauphin and Ma, "Fixup Initialization: Residual Learning Without
    Normalization", ICLR 2019; ``cifar/models/fixup_resnet_cifar.py`` and
    ``imagenet/models/fixup_resnet_imagenet.py`` of hongyi-zhang/Fixup. Each
    branch's last kernel layer and the classifier: kernel and bias 0. The
    other kernel layers of a branch of ``m >= 2``: He normal
    (``std = sqrt(2 / fan_in)``, untruncated as ``nn.init.normal_``) times
    ``L ** (-1 / (2 m - 2))`` (the reference: ``num_layers ** -0.5`` for
    basic blocks, ``** -0.25`` for bottlenecks); a branch of ``m = 1`` only
    gets its zero. Every other kernel (stem, projection shortcuts): He
    normal, as the ImageNet reference draws its ``downsample`` convolution.
    The biases of the layers drawn: 0. The reference computes He's ``std``
    from ``out_channels * k * k`` (PyTorch's ``fan_out``); here it is the
    true ``fan_in``, the paper's "standard method", the same for the square
    convolutions inside a block. Fixup's scalar biases (``bias1a``, ...) and
    multiplier (``scale``) are not inserted: they start at 0 and 1, so the
    initial function is the same; add them as layers to train them.
    Embeddings and recurrent kernels are left as they are.
``skipinit`` and ``rezero`` (the same rule)
    De and Smith, "Batch Normalization Biases Residual Blocks Towards the
    Identity Function in Deep Networks", NeurIPS 2020
    (``nfnets/skipinit_resnet.py`` of google-deepmind/deepmind-research:
    ``skip_gain`` starts at 0); Bachlechner et al., "ReZero is All You
    Need", arXiv 2003.04887, 2020. A branch that ends in a
    :class:`~keras_initzoo.layers.ResidualGain` gets gain 0; any other
    branch gets its last layer whose parameters scale its output zeroed
    (a kernel layer's kernel and bias, or a normalization's gamma and beta):
    the residual gain that starts at zero, where no gate can be inserted.
    Refused (``ValueError`` naming the layer) where that zero would stay
    for good or would not zero the branch: the zeroed layer, or one after it
    on the branch, has an activation that is flat below 0 (ReLU, ReLU6: its
    derivative at 0 is 0, so no gradient reaches the zeroed weights) or is
    not 0 at 0 (sigmoid, softplus). Nothing else is touched.
``gpt2`` and ``megatron`` (the same distribution)
    Radford et al., "Language Models are Unsupervised Multitask Learners",
    2019, as karpathy/nanoGPT ``model.py`` (``_init_weights``: every
    ``nn.Linear`` and ``nn.Embedding`` ``N(0, 0.02**2)``, biases 0;
    ``c_proj.weight`` ``std = 0.02 / sqrt(2 * n_layer)``); Shoeybi et al.,
    "Megatron-LM", 2019, ``init_method_normal(0.02)`` and
    ``scaled_init_method_normal(0.02, num_layers)``
    (``std = sigma / sqrt(2 num_layers)``) in NVIDIA/Megatron-LM, the same
    numbers. Every kernel and embedding ``N(0, 0.02**2)``, each branch end
    ``N(0, (0.02 / sqrt(L))**2)`` (``L = 2 n_layers``: a transformer layer
    has two branches), every bias 0.
``olmo_mitchell``
    Groeneveld et al., "OLMo: Accelerating the Science of Language Models",
    ACL 2024; the ``mitchell`` branches of ``reset_parameters`` in
    ``olmo/model.py`` of allenai/OLMo: normals truncated at 3 standard
    deviations (``init_normal(..., init_cutoff_factor=3)``:
    ``trunc_normal_(std, a=-3 std, b=3 std)``), ``std = 1 / sqrt(fan_in)``
    for input projections (``att_proj``, ``ff_proj``: ``1 / sqrt(d_model)``)
    and the output head, ``1 / sqrt(d)`` for token and position embeddings
    (``d`` the embedding width, ``wte``, ``wpe``), and for the branch end of
    block ``l`` ``1 / sqrt(2 fan_in (l + 1))``: OLMo's ``attn_out``
    (``1 / sqrt(2 d_model (l + 1))``) and ``ff_out``
    (``1 / sqrt(2 ff_out.in_features (l + 1))``). Biases 0.
``t_fixup``
    Huang, Perez, Ba and Volkovs, "Improving Transformer Optimization
    Through Better Initialization", ICML 2020; layer6ai-labs/T-Fixup,
    ``fairseq/modules/transformer_layer.py`` (``fixup_initialization``)
    and ``fairseq/models/transformer.py``. The decoder rule, for a
    decoder-only or encoder-only stack of ``N`` blocks (the reference's
    encoder rule, ``0.67 N ** (-1/4)``, belongs to an encoder paired with a
    decoder): fairseq's Xavier uniform everywhere (query and key with gain
    ``1 / sqrt(2)``, as fairseq's ``MultiheadAttention``), then the value,
    attention-output and MLP kernels of every branch times
    ``(9 N) ** (-1/4)``; token embeddings ``N(0, d ** -1)``
    (``std = d ** -0.5``) times ``(9 N) ** (-1/4)``; learned position
    embeddings and an untied output projection ``N(0, d ** -1)``; biases 0.
    fairseq multiplies token embeddings by ``sqrt(d)`` in its forward pass
    (``embed_scale``), which a model without that factor does not do.
    T-Fixup trains without LayerNorm and without warmup; a built model keeps
    its LayerNorms.
``deepnorm``
    Wang et al., "DeepNet: Scaling Transformers to 1,000 Layers", 2022
    (Figure 2's ``deepnorm_init``); microsoft/torchscale,
    ``torchscale/architecture/encoder.py`` (``alpha = (2 N) ** (1/4)``,
    ``init_scale = (8 N) ** (1/4)``, ``fc1``, ``fc2``, ``out_proj``,
    ``v_proj`` divided by it). For an encoder-only or decoder-only stack of
    ``N`` blocks: ``alpha = (2 N) ** (1/4)``, ``beta = (8 N) ** (-1/4)``;
    Xavier normal with gain ``beta`` for the value, attention-output and MLP
    kernels of every branch, gain 1 for query and key; biases of those
    layers 0. DeepNorm's blocks compute ``LN(alpha x + G(x))``; LayerNorm
    does not see a common scale (up to its epsilon), so
    ``LN(alpha x + G(x)) = LN(x + G(x) / alpha)``, and the branch end's
    kernel is divided by ``alpha``: the built model computes DeepNorm's
    function. That needs a normalization right after each join (post-LN,
    e.g. KerasHub's ``BertBackbone``): a pre-LN model, whose raw sum goes on
    along the stream, is refused. ``alpha`` and ``beta`` are in the
    report's notes and ``report.constants``.
``nf``
    Brock, De and Smith, "Characterizing signal propagation to close the
    performance gap in unnormalized ResNets", ICLR 2021 (NF-ResNets), and
    Brock, De, Smith and Simonyan, "High-Performance Large-Scale Image
    Recognition Without Normalization", ICML 2021 (NFNets);
    ``nfnets/nf_resnet.py`` and ``nfnets/base.py`` of
    google-deepmind/deepmind-research. What is done, once, at
    initialization: every kernel drawn ``N(0, 1/fan_in)`` and standardized
    per output unit (:func:`keras_initzoo.layers.standardize_kernel`, gain
    ``nf_gamma`` of the activation feeding it: NF's ``gamma * f(x)`` folded
    into the next kernel, which is linear in its input); each branch's first
    kernel layer(s), and a projection shortcut, times ``beta_l = 1 /
    sqrt(E[var])`` of the stream entering block ``l`` (NF's
    ``f(x) * beta``, exact whatever ``f``: the kernel is linear in its
    input; a branch that normalizes before its first kernel gets none); each
    branch end's output times ``alpha = 0.2``, exact when what follows it on
    the branch is positively homogeneous; ``E[var]`` grows by ``alpha**2``
    per join and restarts at 1 after a projection shortcut, as the
    reference's ``expected_std``; the classifier ``N(0, 0.01**2)`` (the
    reference's ``fc_init``); biases 0. In a ``WSDense``/``WSConv2D`` the
    factors go into its ``gain``. What is not done: the standardization in
    every forward pass (use ``kiz.layers.WSDense``/``WSConv2D``), adaptive
    gradient clipping (``kiz.optimizers.adaptive_clipping``), the SkipInit
    gain the reference also multiplies each branch by (starting at 0: use
    ``ResidualGain``), stochastic depth and squeeze-excite's factor 2.
    Embeddings and recurrent kernels are left as they are.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo._records import refuse_if_parametrized
from keras_initzoo.fans import conv_transpose_axes
from keras_initzoo.gains import nf_gamma
from keras_initzoo.initializers import SimpleNormal, TruncatedNormal, VarianceScaling
from keras_initzoo.initializers.base import _seed_state
from keras_initzoo.initializers.simple import truncated_normal_variance
from keras_initzoo.layers import ResidualGain, WSConv2D, WSDense, standardize_kernel
from keras_initzoo.models.auto import SignalKinds, constant_of
from keras_initzoo.models.data import as_batch, check_built, synthetic_batch
from keras_initzoo.models.report import Report
from keras_initzoo.models.residual import Join, Node, ResidualTrace, trace
from keras_initzoo.models.walk import NORMALIZATION, KernelSite, Walk, einsum_axes, walk

L = keras.layers
_ACTIVATION_LAYERS = (L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Softmax)
_WS = (WSDense, WSConv2D)
_CONV = (L.Conv1D, L.Conv2D, L.Conv3D)
_CONV_TRANSPOSE = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
_SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)

COLUMNS = ("path", "block", "role", "rule", "target std", "actual std")
GPT2_STD = 0.02  # nanoGPT's and Megatron's sigma
OLMO_CUTOFF = 3.0  # OLMo's init_cutoff_factor for "mitchell"
NF_ALPHA = 0.2  # nf_resnet.py: alpha=0.2
NF_FC_STD = 0.01  # nf_resnet.py: fc_init = RandomNormal(0.01, 0)
# A query or key projection, by attribute (keras.layers.MultiHeadAttention, KerasHub's
# attention layers) or, failing that, by name (PyTorch-style ports).
_ATTENTION_ATTRIBUTES = {"_query_dense": "query", "_key_dense": "key", "_value_dense": "value"}
_ROLE_NAMES = {
    **dict.fromkeys(("query", "q_proj", "query_dense", "wq"), "query"),
    **dict.fromkeys(("key", "k_proj", "key_dense", "wk"), "key"),
    **dict.fromkeys(("value", "v_proj", "value_dense", "wv"), "value"),
}


# -- the structure a recipe sees ----------------------------------------------------------


@dataclass
class Structure:
    """What one probed forward pass found, in the terms the recipes use.

    ``joins`` are the residual joins in call order, sums of embeddings left
    out; ``layers`` every leaf layer by path; ``sites`` each kernel layer's
    kernels; ``fed_by`` the activation feeding each kernel layer, as
    :func:`keras_initzoo.auto_initialize` reads it. A recipe adds to
    ``notes`` and ``constants``, which go into the report.
    """

    model: keras.layers.Layer
    trace: ResidualTrace
    joins: list[Join]
    layers: dict[str, keras.layers.Layer]
    sites: dict[str, list[KernelSite]]
    fed_by: dict[str, tuple]
    notes: list[str] = field(default_factory=list)
    constants: dict[str, float] = field(default_factory=dict)
    _roles: dict[int, str] | None = field(default=None, repr=False)

    @property
    def nodes(self) -> list[Node]:
        return self.trace.nodes

    def blocks(self) -> list[str]:
        """The blocks in call order: a join's block name without its ``:k`` suffix."""
        return list(dict.fromkeys(block_of(join) for join in self.joins))

    def block_index(self, join: Join) -> int:
        return self.blocks().index(block_of(join))

    def position(self, path: str) -> tuple[Join | None, str]:
        """``(join, role)`` of a kernel layer: ``"branch end"``, ``"branch"``,
        ``"shortcut"``, or ``(None, "outside")``."""
        for join in self.joins:
            if join.branch and path == join.branch[-1]:
                return join, "branch end"
        for join in self.joins:
            if path in join.branch:
                return join, "branch"
            if path in join.shortcut:
                return join, "shortcut"
        return None, "outside"

    def exclusive(self, join: Join) -> set[int]:
        """The nodes on the branch only: ancestors of its end that the skip does not have."""
        nodes = self.nodes
        branch = set(nodes[join.branch_end].ancestors) | {join.branch_end}
        skip = set(nodes[join.skip].ancestors) | {join.skip}
        return branch - skip

    def first_node(self, path: str, within: set[int] | None = None) -> Node | None:
        for node in self.nodes:
            if (
                node.kind == "layer"
                and node.path == path
                and (within is None or node.index in within)
            ):
                return node
        return None

    def classifier(self) -> str | None:
        """The last kernel layer called, when it is outside every branch, after the last
        join, and (for a functional model) every output comes from it through layers
        without weights."""
        kernel_nodes = [n for n in self.trace.layer_nodes() if n.path in self.sites]
        if not kernel_nodes:
            return None
        last = kernel_nodes[-1]
        if self.position(last.path)[1] != "outside":
            return None
        if self.joins and last.index < max(join.node for join in self.joins):
            return None
        if any(site.role != "kernel" for site in self.sites[last.path]):
            return None
        outputs = getattr(self.model, "outputs", None)
        if outputs:
            for output in keras.tree.flatten(outputs):
                if _producer(output, last.layer) is None:
                    return None
        return last.path

    def attention_role(self, path: str) -> str | None:
        """``"query"``, ``"key"`` or ``"value"`` for an attention layer's projection."""
        if self._roles is None:
            self._roles = {}
            for parent in internals.flatten_layers(self.model, include_self=True, recursive=True):
                for attribute, role in _ATTENTION_ATTRIBUTES.items():
                    child = getattr(parent, attribute, None)
                    if isinstance(child, keras.layers.Layer):
                        self._roles.setdefault(id(child), role)
        layer = self.layers.get(path)
        if layer is not None and id(layer) in self._roles:
            return self._roles[id(layer)]
        return _ROLE_NAMES.get(path.rsplit("/", 1)[-1])


def block_of(join: Join) -> str:
    """A join's block: its name without the ``:k`` that numbers the joins of one block."""
    return re.sub(r":\d+$", "", join.block)


def _producer(tensor: Any, target: keras.layers.Layer) -> keras.layers.Layer | None:
    """``target`` when ``tensor`` comes from it through single-input layers without weights."""
    history = internals.keras_history(tensor)
    while history is not None:
        operation, node_index, _ = history
        if operation is target:
            return target
        if getattr(operation, "weights", None):
            return None
        inputs = internals.inbound_nodes(operation)[node_index].input_tensors
        if len(inputs) != 1:
            return None
        history = internals.keras_history(inputs[0])
    return None


def _is_embedding_sum(join: Join, sites: dict[str, list[KernelSite]]) -> bool:
    """A join whose branch holds only embedding tables: token + position, not a residual."""
    roles = [site.role for path in join.branch for site in sites.get(path, [])]
    return bool(roles) and all(role == "embeddings" for role in roles)


def structure_of(
    model: keras.layers.Layer, data: Any = None, *, training: bool = True
) -> Structure:
    """The :class:`Structure` of a built model, from one probed forward pass.

    Args:
        model: a built Keras model or layer.
        data: a batch of its inputs (default None: :func:`synthetic_batch`).
        training: the mode of the probed pass (default True, as in
            training). Keyword only.

    Returns:
        The model's :class:`Structure`.
    """
    found = walk(model)
    sites: dict[str, list[KernelSite]] = {}
    for site in found.kernels:
        sites.setdefault(site.layer.path or site.layer.name, []).append(site)
    kinds = SignalKinds()
    fed_by: dict[str, tuple] = {}
    layers: dict[str, keras.layers.Layer] = {}

    def inner(layer, call, args, kwargs):
        path = layer.path or layer.name
        layers.setdefault(path, layer)
        if path in sites and path not in fed_by:
            fed_by[path] = kinds.fed_by(args, kwargs)
        output = call(*args, **kwargs)
        kinds.record(layer, args, kwargs, output)
        return output

    batch = synthetic_batch(model) if data is None else as_batch(data)
    probed = trace(model, batch, training=training, inner=inner)
    for layer in internals.flatten_layers(model, include_self=False, recursive=True):
        layers.setdefault(layer.path or layer.name, layer)
    joins = [join for join in probed.joins if not _is_embedding_sum(join, sites)]
    structure = Structure(model, probed, joins, layers, sites, fed_by)
    dropped = len(probed.joins) - len(joins)
    if dropped:
        structure.notes.append(
            f"{dropped} sum(s) of embeddings (token + position) are not residual branches"
        )
    return structure


# -- what a recipe does to each variable --------------------------------------------------


class _Plan:
    """The variables a recipe touches, in order, with their rule and target std; the
    rows are read at the end, from the variables' final values."""

    def __init__(self) -> None:
        self.entries: dict[int, dict[str, Any]] = {}

    def set(self, variable, block, role, rule, target, effective=None) -> None:
        self.entries[id(variable)] = {
            "variable": variable, "block": block, "role": role, "rule": rule,
            "target": target, "effective": effective,
        }  # fmt: skip

    def scale(self, variable, factor: float, why: str) -> None:
        entry = self.entries.get(id(variable))
        if entry is None:
            self.set(variable, None, "scaled", why, None)
            return
        if entry["target"] is not None:
            entry["target"] *= abs(factor)
        entry["rule"] += f"; {why}"

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for entry in self.entries.values():
            variable = entry["variable"]
            value = entry["effective"]() if entry["effective"] else variable.value
            values = np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")
            # a scalar (a gate) reports its value
            actual = float(values.reshape(())) if values.size == 1 else float(values.std())
            rows.append(
                {
                    "path": variable.path,
                    "block": entry["block"],
                    "role": entry["role"],
                    "rule": entry["rule"],
                    "target std": entry["target"],
                    "actual std": actual,
                }
            )
        return rows


def _assign(variable, values) -> None:
    variable.assign(keras.ops.cast(values, variable.dtype))


def _zero(variable) -> None:
    variable.assign(keras.ops.zeros(variable.shape, dtype=variable.dtype))


def _draw(site: KernelSite, initializer) -> Any:
    """``site``'s kernel drawn by ``initializer``: a VarianceScaling with the true fans."""
    dtype = keras.backend.standardize_dtype(site.variable.dtype)
    if isinstance(initializer, VarianceScaling):
        return initializer.draw_for_fans(site.shape, dtype, site.fan_in, site.fan_out)
    return initializer(site.shape, dtype=dtype)


def _bias(layer: keras.layers.Layer):
    bias = getattr(layer, "bias", None)
    return bias if isinstance(bias, keras.Variable) else None


def _zero_bias(plan: _Plan, layer, block, role) -> None:
    bias = _bias(layer)
    if bias is not None:
        _zero(bias)
        plan.set(bias, block, f"bias ({role})", "0", 0.0)


def _zero_all_biases(plan: _Plan, structure: Structure, found: Walk) -> None:
    """Every bias of the model set to 0, each row with its layer's block and role."""
    owners = {
        id(_bias(layer)): path
        for path, layer in structure.layers.items()
        if _bias(layer) is not None
    }
    for bias in found.biases:
        _zero(bias)
        block, role = _where(structure, owners.get(id(bias), ""))
        plan.set(bias, block, f"bias ({role})", "0", 0.0)


def _where(structure: Structure, path: str) -> tuple[str | None, str]:
    join, role = structure.position(path)
    return (join.block if join else None), role


# -- activations that would keep a zeroed branch at zero for good --------------------------


def _activation(layer: keras.layers.Layer) -> Callable | None:
    if isinstance(layer, _ACTIVATION_LAYERS):
        return layer
    function = getattr(layer, "activation", None)
    if function is None or function is keras.activations.linear:
        return None
    return function if callable(function) else None


def _zero_problem(layer: keras.layers.Layer) -> str | None:
    """Why a zero input to ``layer``'s activation would be a problem, or None."""
    function = _activation(layer)
    if function is None:
        return None
    probe = keras.ops.convert_to_tensor(np.array([-1e-3, 0.0, 1e-3], dtype="float32"))
    try:
        values = np.asarray(keras.ops.convert_to_numpy(function(probe)), dtype="float64")
    except Exception:  # an activation that needs another shape: nothing can be said
        return None
    if values[1] != 0.0:
        return f"its activation is {values[1]:.4g}, not 0, at 0, so the branch would not be zero"
    if values[0] == values[1]:
        return (
            "its activation is flat below 0 (ReLU-like, derivative 0 at 0), so no gradient "
            "would ever reach the zeroed weights"
        )
    return None


def _check_zero_keeps_gradient(structure: Structure, join: Join, node: Node) -> None:
    """Raises when zeroing ``node``'s output would stop the branch's gradient or not zero it."""
    within = structure.exclusive(join)
    after = [node] + [
        n
        for n in structure.nodes
        if n.index in within and n.index > node.index and node.index in n.ancestors
        and n.kind == "layer"
    ]  # fmt: skip
    for n in after:
        problem = _zero_problem(n.layer)
        if problem is not None:
            which = "the zeroed layer" if n is node else f"after the zeroed layer {node.path!r}"
            raise ValueError(
                f"Cannot start the branch of block {join.block!r} at zero: layer {n.path!r} "
                f"({which}) {problem}. Give the branch a linear last layer, or end it in "
                "kiz.layers.ResidualGain() (a gate that starts at zero)."
            )


# -- the recipes ---------------------------------------------------------------------------


def _need_joins(structure: Structure, recipe: str) -> None:
    if not structure.joins:
        raise ValueError(
            f"recipe {recipe!r} initializes residual branches, and the model "
            f"{structure.model.name!r} has none: no join x + f(x) with a kernel on its branch "
            "was found (see kiz.residual_structure)."
        )


def _left_alone(structure: Structure, sites: list[KernelSite], why: str) -> None:
    if sites:
        paths = ", ".join(site.path for site in sites[:4])
        more = f" and {len(sites) - 4} more" if len(sites) > 4 else ""
        structure.notes.append(f"left as they are ({why}): {paths}{more}")


def _apply_fixup(model, structure: Structure, found: Walk, seed) -> list[dict]:
    _need_joins(structure, "fixup")
    count = len(structure.joins)
    plan = _Plan()
    classifier = structure.classifier()
    he = VarianceScaling(2.0, "fan_in", "normal", seed=seed)
    scaled: dict[int, VarianceScaling] = {}
    ends = {join.branch[-1]: join for join in structure.joins}
    for join in structure.joins:
        _check_zero_keeps_gradient(structure, join, structure.first_node(join.branch[-1]))
        scalable = join.scalable
        if scalable is not None and scalable != join.branch[-1]:
            structure.notes.append(
                f"{join.block}: {scalable} after the zeroed {join.branch[-1]} on the branch "
                "(Fixup is meant for networks without normalization)"
            )
    skipped = []
    for path, sites in structure.sites.items():
        layer = sites[0].layer
        block, role = _where(structure, path)
        if path in ends or path == classifier:
            role = "classifier" if path == classifier and path not in ends else role
            for site in sites:
                _zero(site.variable)
                plan.set(site.variable, block, role, "0", 0.0)
            _zero_bias(plan, layer, block, role)
            continue
        drawn = False
        for site in sites:
            if site.role in ("embeddings", "reverse_embeddings", "recurrent_kernel"):
                skipped.append(site)
                continue
            join, role = structure.position(path)
            m = len(join.branch) if join is not None and role == "branch" else 0
            if m >= 2:
                factor = count ** (-1.0 / (2 * m - 2))
                if m not in scaled:
                    scaled[m] = VarianceScaling(2.0 * factor**2, "fan_in", "normal", seed=seed)
                init, rule = (
                    scaled[m],
                    f"He normal x L^(-1/(2m-2)) = {factor:.4g} (L={count}, m={m})",
                )
            else:
                init, rule, factor = he, "He normal", 1.0
            _assign(site.variable, _draw(site, init))
            plan.set(site.variable, block, role, rule, math.sqrt(2.0 / site.fan_in) * factor)
            drawn = True
        if drawn:
            _zero_bias(plan, layer, block, role)
    _left_alone(structure, skipped, "Fixup draws kernels of convolutions and dense layers")
    structure.notes.append(
        f"L = {count} residual branches; Fixup's scalar biases and multipliers are not "
        "inserted (they start at 0 and 1: the same initial function)"
    )
    return plan.rows()


def _gate_of(structure: Structure, join: Join) -> tuple[str, Node] | None:
    """``("gain", node)`` for a ResidualGain ending the branch, ``("layer", node)`` for its
    last scalable layer, or None."""
    within = structure.exclusive(join)
    candidates = []
    for node in structure.nodes:
        if node.index not in within or node.kind != "layer":
            continue
        if isinstance(node.layer, ResidualGain):
            candidates.append(("gain", node))
        elif node.path == join.scalable:
            candidates.append(("layer", node))
    return candidates[-1] if candidates else None


def _apply_skipinit(model, structure: Structure, found: Walk, seed) -> list[dict]:
    _need_joins(structure, "skipinit")
    plan = _Plan()
    gates = []
    for join in structure.joins:
        gate = _gate_of(structure, join)
        if gate is None:
            raise ValueError(
                f"Cannot start the branch of block {join.block!r} at zero: no layer on it "
                "scales its output (a kernel layer, a normalization with a scale) and no "
                "kiz.layers.ResidualGain ends it. Add ResidualGain() at the branch's end."
            )
        _check_zero_keeps_gradient(structure, join, gate[1])
        gates.append((join, gate))
    for join, (kind, node) in gates:
        layer = node.layer
        if kind == "gain":
            _zero(layer.alpha)
            plan.set(layer.alpha, join.block, "gate", "ResidualGain = 0", 0.0)
        elif isinstance(layer, NORMALIZATION):
            for name in ("gamma", "beta"):
                variable = getattr(layer, name, None)
                if isinstance(variable, keras.Variable):
                    _zero(variable)
                    plan.set(variable, join.block, "branch end (normalization)", "0", 0.0)
        elif isinstance(layer, _WS):  # a standardized kernel cannot be zero: its gain can
            _zero(layer.gain)
            plan.set(layer.gain, join.block, "branch end (gain)", "0", 0.0)
            _zero_bias(plan, layer, join.block, "branch end")
        else:
            for site in structure.sites.get(node.path, []):
                _zero(site.variable)
                plan.set(site.variable, join.block, "branch end", "0", 0.0)
            _zero_bias(plan, layer, join.block, "branch end")
    return plan.rows()


def _normal_everywhere(structure: Structure, found: Walk, seed, name: str) -> list[dict]:
    _need_joins(structure, name)
    plan = _Plan()
    count = len(structure.joins)
    ends = {join.branch[-1] for join in structure.joins}
    base = SimpleNormal(GPT2_STD, seed=seed)
    end = SimpleNormal(GPT2_STD / math.sqrt(count), seed=seed)
    for path, sites in structure.sites.items():
        block, role = _where(structure, path)
        for site in sites:
            if path in ends and site.role != "embeddings":
                _assign(site.variable, _draw(site, end))
                rule = f"N(0, (0.02/sqrt(2 n_layers))^2), 2 n_layers = {count}"
                plan.set(site.variable, block, role, rule, GPT2_STD / math.sqrt(count))
            else:
                _assign(site.variable, _draw(site, base))
                role = "embedding" if site.role == "embeddings" else role
                plan.set(site.variable, block, role, "N(0, 0.02^2)", GPT2_STD)
    _zero_all_biases(plan, structure, found)
    structure.constants.update(
        n_layers=count / 2, std=GPT2_STD, end_std=GPT2_STD / math.sqrt(count)
    )
    structure.notes.append(
        f"2 n_layers = {count} residual branches: branch ends std 0.02/sqrt({count}) = "
        f"{GPT2_STD / math.sqrt(count):.4g}"
    )
    return plan.rows()


def _apply_gpt2(model, structure: Structure, found: Walk, seed) -> list[dict]:
    return _normal_everywhere(structure, found, seed, "gpt2")


def _apply_megatron(model, structure: Structure, found: Walk, seed) -> list[dict]:
    rows = _normal_everywhere(structure, found, seed, "megatron")
    structure.notes.append(
        "Megatron-LM's init_method_normal(0.02) and scaled_init_method_normal(0.02, "
        "num_layers) draw the same distribution as GPT-2's rule"
    )
    return rows


def _apply_olmo_mitchell(model, structure: Structure, found: Walk, seed) -> list[dict]:
    _need_joins(structure, "olmo_mitchell")
    plan = _Plan()
    kept = math.sqrt(truncated_normal_variance(-OLMO_CUTOFF, OLMO_CUTOFF))
    by_std: dict[float, TruncatedNormal] = {}

    def normal(std: float) -> TruncatedNormal:
        if std not in by_std:
            by_std[std] = TruncatedNormal(0.0, std, -OLMO_CUTOFF, OLMO_CUTOFF, seed=seed)
        return by_std[std]

    for path, sites in structure.sites.items():
        join, role = structure.position(path)
        block = join.block if join else None
        for site in sites:
            if role == "branch end" and site.role != "embeddings":
                layer_index = structure.block_index(join)
                std = 1.0 / math.sqrt(2.0 * site.fan_in * (layer_index + 1))
                rule = f"1/sqrt(2 fan_in (l+1)), l = {layer_index}"
            elif site.role == "embeddings":
                std, rule, role = 1.0 / math.sqrt(site.fan_out), "1/sqrt(d)", "embedding"
            else:
                std, rule = 1.0 / math.sqrt(site.fan_in), "1/sqrt(fan_in)"
            _assign(site.variable, _draw(site, normal(std)))
            plan.set(site.variable, block, role, f"{rule}, truncated at 3 std", std * kept)
    _zero_all_biases(plan, structure, found)
    structure.notes.append(
        "normals truncated at 3 std as OLMo's trunc_normal_: the values' std is "
        f"{kept:.4f} times the rule's"
    )
    return plan.rows()


def _query_or_key(structure: Structure, path: str) -> bool:
    return structure.attention_role(path) in ("query", "key")


def _apply_t_fixup(model, structure: Structure, found: Walk, seed) -> list[dict]:
    _need_joins(structure, "t_fixup")
    plan = _Plan()
    count = len(structure.blocks())
    scale = (9.0 * count) ** -0.25
    xavier = VarianceScaling(1.0, "fan_avg", "uniform", seed=seed)
    query_key = VarianceScaling(0.5, "fan_avg", "uniform", seed=seed)
    scaled = VarianceScaling(scale**2, "fan_avg", "uniform", seed=seed)
    normals: dict[float, SimpleNormal] = {}

    def normal(std: float) -> SimpleNormal:
        if std not in normals:
            normals[std] = SimpleNormal(std, seed=seed)
        return normals[std]

    skipped = []
    for path, sites in structure.sites.items():
        join, role = structure.position(path)
        block = join.block if join else None
        layer = sites[0].layer
        drawn = False
        for site in sites:
            if site.role == "recurrent_kernel":
                skipped.append(site)
                continue
            if site.role == "embeddings":
                std = site.fan_out**-0.5
                if isinstance(layer, L.Embedding):
                    values, target = _draw(site, normal(std * scale)), std * scale
                    rule = f"N(0, d^-1) x (9N)^(-1/4) = {scale:.4g}"
                else:
                    values, target, rule = _draw(site, normal(std)), std, "N(0, d^-1)"
                _assign(site.variable, values)
                plan.set(site.variable, block, "embedding", rule, target)
                continue
            if site.role == "reverse_embeddings":
                std = site.fan_in**-0.5
                _assign(site.variable, _draw(site, normal(std)))
                plan.set(site.variable, block, "output projection", "N(0, d^-1)", std)
                continue
            xavier_std = math.sqrt(2.0 / (site.fan_in + site.fan_out))
            if role in ("branch", "branch end") and _query_or_key(structure, path):
                init, rule, target = (
                    query_key,
                    "Xavier uniform, gain 1/sqrt(2)",
                    xavier_std / math.sqrt(2),
                )
            elif role in ("branch", "branch end"):
                init, target = scaled, xavier_std * scale
                rule = f"Xavier uniform x (9N)^(-1/4) = {scale:.4g}"
            else:
                init, rule, target = xavier, "Xavier uniform", xavier_std
            _assign(site.variable, _draw(site, init))
            plan.set(site.variable, block, role, rule, target)
            drawn = True
        if drawn:
            _zero_bias(plan, layer, block, role)
    _left_alone(structure, skipped, "T-Fixup has no rule for recurrent kernels")
    structure.constants.update(N=count, scale=scale)
    structure.notes.append(
        f"T-Fixup's decoder rule: N = {count} blocks, (9N)^(-1/4) = {scale:.4g}; the "
        "LayerNorms T-Fixup removes stay in a built model"
    )
    return plan.rows()


def _post_ln_problem(structure: Structure, join: Join) -> str | None:
    """None when the join's raw sum feeds only normalization layers (post-LN)."""
    nodes = structure.nodes
    consumers, frontier, seen = [], [join.node], {join.node}
    while frontier:
        index = frontier.pop()
        for node in nodes[index + 1 :]:
            if index in node.inputs and node.index not in seen:
                seen.add(node.index)
                if node.kind == "alias":
                    frontier.append(node.index)
                else:
                    consumers.append(node)
    if not consumers:
        return "nothing reads its sum"
    others = [
        n for n in consumers if not (n.kind == "layer" and isinstance(n.layer, NORMALIZATION))
    ]
    if not any(n.kind == "layer" and isinstance(n.layer, NORMALIZATION) for n in consumers):
        return "no normalization follows it"
    if others:
        return f"its raw sum also goes on to {others[0].path} (a pre-LN block)"
    return None


def _apply_deepnorm(model, structure: Structure, found: Walk, seed) -> list[dict]:
    _need_joins(structure, "deepnorm")
    for join in structure.joins:
        problem = _post_ln_problem(structure, join)
        if problem is not None:
            raise ValueError(
                "deepnorm folds the skip's alpha into the branch, LN(alpha x + G(x)) = "
                "LN(x + G(x)/alpha), which needs a normalization right after each join "
                f"(post-LN, e.g. KerasHub's BertBackbone); the join of block {join.block!r}: "
                f"{problem}. A pre-LN model would need x * alpha on its skip, for which a "
                "built model has no parameter."
            )
    plan = _Plan()
    count = len(structure.blocks())
    alpha, beta = (2.0 * count) ** 0.25, (8.0 * count) ** -0.25
    unit = VarianceScaling(1.0, "fan_avg", "normal", seed=seed)
    gained = VarianceScaling(beta**2, "fan_avg", "normal", seed=seed)
    ended = VarianceScaling((beta / alpha) ** 2, "fan_avg", "normal", seed=seed)
    untouched = []
    for path, sites in structure.sites.items():
        join, role = structure.position(path)
        if role not in ("branch", "branch end"):
            untouched.extend(sites)
            continue
        for site in sites:
            xavier_std = math.sqrt(2.0 / (site.fan_in + site.fan_out))
            if _query_or_key(structure, path):
                init, rule, target = unit, "Xavier normal, gain 1", xavier_std
            elif role == "branch end":
                init, target = ended, xavier_std * beta / alpha
                rule = f"Xavier normal, gain beta = {beta:.4g}, / alpha = {alpha:.4g}"
            else:
                init, rule, target = (
                    gained,
                    f"Xavier normal, gain beta = {beta:.4g}",
                    xavier_std * beta,
                )
            _assign(site.variable, _draw(site, init))
            plan.set(site.variable, join.block, role, rule, target)
        _zero_bias(plan, sites[0].layer, join.block, role)
    _left_alone(structure, untouched, "outside the branches, DeepNet gives no rule")
    structure.constants.update(N=count, alpha=alpha, beta=beta)
    structure.notes.append(
        f"DeepNorm for N = {count} blocks: alpha = (2N)^(1/4) = {alpha:.6g}, "
        f"beta = (8N)^(-1/4) = {beta:.6g}; alpha folded into each branch end "
        "(LN(alpha x + G(x)) = LN(x + G(x)/alpha) up to LayerNorm's epsilon)"
    )
    return plan.rows()


def _fan_in_axes(site: KernelSite) -> tuple[int, ...] | None:
    """The kernel axes one output unit's weights span, for weight standardization."""
    layer, rank = site.layer, len(site.shape)
    if isinstance(layer, L.EinsumDense):
        return tuple(einsum_axes(layer.equation)["input_axes"])
    if isinstance(layer, _CONV_TRANSPOSE):
        axes = conv_transpose_axes(rank - 2)
        return tuple(axes["input_axes"])
    if site.role == "depthwise_kernel":
        return tuple(range(rank - 2))
    if isinstance(layer, (L.Dense, *_CONV, *_SEPARABLE)):
        return tuple(range(rank - 1))
    return None


def _gamma(kind: tuple) -> tuple[float, str]:
    return constant_of(kind, nf_gamma, "nf_gamma")


def _apply_nf(model, structure: Structure, found: Walk, seed) -> list[dict]:
    _need_joins(structure, "nf")
    plan = _Plan()
    classifier = structure.classifier()
    unit = VarianceScaling(1.0, "fan_in", "normal", seed=seed)
    head = SimpleNormal(NF_FC_STD, seed=seed)
    skipped, raw = [], []
    for path, sites in structure.sites.items():
        layer = sites[0].layer
        block, role = _where(structure, path)
        if path == classifier:
            for site in sites:
                _assign(site.variable, _draw(site, head))
                plan.set(site.variable, block, "classifier", "N(0, 0.01^2)", NF_FC_STD)
            _zero_bias(plan, layer, block, "classifier")
            continue
        gamma, why = _gamma(structure.fed_by.get(path, ("linear", ())))
        drawn = False
        for site in sites:
            axes = _fan_in_axes(site)
            if site.role in ("embeddings", "reverse_embeddings", "recurrent_kernel"):
                skipped.append(site)
                continue
            values = _draw(site, unit)
            target = gamma / math.sqrt(site.fan_in)
            if isinstance(layer, _WS):
                _assign(site.variable, values)
                layer.gain.assign(keras.ops.full(layer.gain.shape, gamma, dtype=layer.gain.dtype))
                effective = _effective(layer)
                plan.set(site.variable, block, role, f"WS layer, gain {why}", target, effective)
            elif axes is None:
                _assign(site.variable, values * gamma)
                raw.append(site)
                plan.set(site.variable, block, role, f"N(0, 1/fan_in), {why}", target)
            else:
                _assign(site.variable, standardize_kernel(values, axes, gain=gamma))
                plan.set(site.variable, block, role, f"standardized, {why}", target)
            drawn = True
        if drawn:
            _zero_bias(plan, layer, block, role)
    _left_alone(structure, skipped, "NF nets standardize convolution and dense kernels")
    _left_alone(
        structure, raw, "no fan-in axes known: drawn N(0, gamma^2/fan_in), not standardized"
    )

    expected = 1.0
    for join in structure.joins:
        beta = 1.0 / math.sqrt(expected)
        firsts = _first_kernels(structure, join)
        if firsts is None:
            structure.notes.append(f"{join.block}: normalized before its first kernel: no beta")
        else:
            for path in firsts + list(join.shortcut[:1]):
                _scale_input(plan, structure, path, beta, f"x beta = 1/sqrt({expected:.4g})")
        if join.scalable is None:
            structure.notes.append(f"{join.block}: nothing on the branch to scale by alpha")
        else:
            _scale_output(plan, structure, join.scalable, NF_ALPHA, f"x alpha = {NF_ALPHA}")
        expected = 1.0 + NF_ALPHA**2 if join.shortcut else expected + NF_ALPHA**2
    structure.constants.update(alpha=NF_ALPHA, expected_var=expected)
    structure.notes.append(
        "weight standardization applied once, at initialization; kiz.layers.WSDense and "
        "WSConv2D keep it in training, kiz.optimizers.adaptive_clipping adds AGC"
    )
    return plan.rows()


def _effective(layer) -> Callable[[], Any]:
    axes = (0,) if isinstance(layer, WSDense) else (0, 1, 2)
    return lambda: standardize_kernel(layer.kernel, axes, gain=layer.gain, eps=layer.eps)


def _first_kernels(structure: Structure, join: Join) -> list[str] | None:
    """The branch's kernel layers with no other kernel layer before them on the branch;
    None when a normalization comes first (it would undo the beta)."""
    within = structure.exclusive(join)
    nodes = [n for n in structure.nodes if n.index in within and n.kind == "layer"]
    kernels = [n for n in nodes if n.path in structure.sites]
    firsts = []
    for node in kernels:
        before = [n for n in nodes if n.index in node.ancestors]
        if any(n.path in structure.sites for n in before):
            continue
        if any(isinstance(n.layer, NORMALIZATION) for n in before):
            return None
        firsts.append(node.path)
    return list(dict.fromkeys(firsts))


def _scale_input(plan: _Plan, structure: Structure, path: str, factor: float, why: str) -> None:
    """``layer(factor * x)``: the kernel times ``factor`` (a WS layer's gain), not the bias."""
    layer = structure.layers[path]
    if isinstance(layer, _WS):
        layer.gain.assign(layer.gain * factor)
        plan.scale(layer.kernel, factor, why)
        return
    for site in structure.sites.get(path, []):
        site.variable.assign(site.variable * factor)
        plan.scale(site.variable, factor, why)


def _scale_output(plan: _Plan, structure: Structure, path: str, factor: float, why: str) -> None:
    """``factor * layer(x)``: kernel and bias (a WS layer's gain and bias, a normalization's
    scale and offset) times ``factor``."""
    layer = structure.layers[path]
    if isinstance(layer, NORMALIZATION):
        variables = [getattr(layer, n, None) for n in ("gamma", "beta")]
    elif isinstance(layer, _WS):
        variables = [layer.gain, _bias(layer)]
    else:
        variables = [site.variable for site in structure.sites.get(path, [])] + [_bias(layer)]
    for variable in variables:
        if isinstance(variable, keras.Variable):
            variable.assign(variable * factor)
            plan.scale(
                layer.kernel if variable is getattr(layer, "gain", None) else variable, factor, why
            )


# -- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """One paper's rule: its name, the paper, the rule in a line, and what applies it.

    ``apply(model, structure, found_walk, seed) -> rows`` changes the model's
    variables in place and returns one row dict per variable touched; it
    gets the :class:`Structure`, the :class:`~keras_initzoo.models.walk.Walk`
    and a ``keras.random.SeedGenerator`` to draw from.

    Attributes:
        name: the key in :data:`RECIPES` and ``apply_recipe``'s ``recipe``
            argument, e.g. ``"fixup"``.
        paper: the paper, authors and venue.
        formula: the rule in a line, as :func:`recipes_table` prints it.
        apply: the function that applies the rule, as above.
        source: where the authors' code does it (default ``""``: not named).
    """

    name: str
    paper: str
    formula: str
    apply: Callable[[keras.layers.Layer, Structure, Walk, keras.random.SeedGenerator], list[dict]]
    source: str = ""


_SKIPINIT_RULE = (
    "each branch's ResidualGain = 0, else its last scalable layer (kernel, bias or gamma, beta) = 0"
)

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "fixup",
            "Zhang, Dauphin & Ma, Fixup Initialization, ICLR 2019",
            "branch ends and classifier 0; other branch kernels He normal x L^(-1/(2m-2)); "
            "other kernels He normal",
            _apply_fixup,
            "hongyi-zhang/Fixup: cifar/models/fixup_resnet_cifar.py, "
            "imagenet/models/fixup_resnet_imagenet.py",
        ),
        Recipe(
            "skipinit",
            "De & Smith, Batch Normalization Biases Residual Blocks Towards the Identity "
            "Function, NeurIPS 2020",
            _SKIPINIT_RULE,
            _apply_skipinit,
            "google-deepmind/deepmind-research: nfnets/skipinit_resnet.py (skip_gain = 0)",
        ),
        Recipe(
            "rezero",
            "Bachlechner et al., ReZero is All You Need, arXiv 2003.04887, 2020",
            _SKIPINIT_RULE + " (as skipinit)",
            _apply_skipinit,
            "the residual weight alpha = 0 of ReZero's paper",
        ),
        Recipe(
            "gpt2",
            "Radford et al., Language Models are Unsupervised Multitask Learners, 2019",
            "kernels and embeddings N(0, 0.02^2); branch ends N(0, (0.02/sqrt(2 n_layers))^2); "
            "biases 0",
            _apply_gpt2,
            "karpathy/nanoGPT: model.py, _init_weights and c_proj.weight",
        ),
        Recipe(
            "megatron",
            "Shoeybi et al., Megatron-LM, arXiv 1909.08053, 2019",
            "as gpt2: init_method_normal(0.02), scaled_init_method_normal(0.02, n_layers)",
            _apply_megatron,
            "NVIDIA/Megatron-LM: init_method_normal, scaled_init_method_normal",
        ),
        Recipe(
            "olmo_mitchell",
            "Groeneveld et al., OLMo: Accelerating the Science of Language Models, ACL 2024",
            "normals truncated at 3 std: 1/sqrt(fan_in); branch end of block l "
            "1/sqrt(2 fan_in (l+1)); embeddings 1/sqrt(d); biases 0",
            _apply_olmo_mitchell,
            "allenai/OLMo: olmo/model.py, reset_parameters, InitFnType.mitchell",
        ),
        Recipe(
            "t_fixup",
            "Huang et al., Improving Transformer Optimization Through Better Initialization, "
            "ICML 2020",
            "Xavier uniform (query, key gain 1/sqrt(2)); value, output and MLP kernels "
            "x (9N)^(-1/4); token embeddings N(0, 1/d) x (9N)^(-1/4)",
            _apply_t_fixup,
            "layer6ai-labs/T-Fixup: fairseq/modules/transformer_layer.py, fixup_initialization",
        ),
        Recipe(
            "deepnorm",
            "Wang et al., DeepNet: Scaling Transformers to 1,000 Layers, arXiv 2203.00555, 2022",
            "alpha = (2N)^(1/4), beta = (8N)^(-1/4); Xavier normal, gain beta for value, output "
            "and MLP kernels (branch ends / alpha, post-LN), gain 1 for query and key",
            _apply_deepnorm,
            "microsoft/torchscale: torchscale/architecture/encoder.py (deepnorm)",
        ),
        Recipe(
            "nf",
            "Brock, De & Smith, ICLR 2021 (NF-ResNets); Brock et al., ICML 2021 (NFNets)",
            "kernels standardized with gain nf_gamma; first branch kernels x 1/sqrt(E var); "
            "branch ends x alpha = 0.2; classifier N(0, 0.01^2)",
            _apply_nf,
            "google-deepmind/deepmind-research: nfnets/nf_resnet.py, nfnets/base.py",
        ),
    )
}


def recipes_table() -> str:
    """The recipes as a Markdown table (recipe, rule, paper), for the README.

    Examples:
        >>> print(recipes_table().splitlines()[0])
        | recipe | rule | paper |
        >>> sum(line.startswith("| `") for line in recipes_table().splitlines()) == len(RECIPES)
        True
    """
    lines = ["| recipe | rule | paper |", "|---|---|---|"]
    for recipe in RECIPES.values():
        cells = (f"`{recipe.name}`", recipe.formula, recipe.paper)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def _check_seed(seed: object) -> keras.random.SeedGenerator:
    if seed is None:
        return keras.random.SeedGenerator()
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ValueError(
            f"`seed` must be None or an integer in [0, 2**32); received seed={seed!r}."
        )
    return keras.random.SeedGenerator(_seed_state(int(seed)))


def _check_recipe(recipe: object) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, str) and recipe in RECIPES:
        return RECIPES[recipe]
    raise ValueError(f"`recipe` must be one of {list(RECIPES)}; received recipe={recipe!r}.")


def apply_recipe(
    model: keras.layers.Layer, recipe: str | Recipe, data: Any = None, *, seed: int | None = None
) -> Report:
    """Initializes a built model's residual network in place by one paper's rule.

    The residual stream is found by one probed forward pass
    (:func:`~keras_initzoo.models.residual.trace`, training mode, state put
    back), the kernels' fans by :func:`~keras_initzoo.models.walk.walk`;
    the rules, and what a built model does not allow, are in this module's
    docstring and ``recipes_table()``.

    Examples:
        >>> inputs = keras.Input((16,))
        >>> x = keras.layers.Dense(16, name="stem")(inputs)
        >>> for i in range(3):
        ...     h = keras.layers.Dense(16, activation="relu", name=f"block{i}_in")(x)
        ...     h = keras.layers.Dense(16, name=f"block{i}_out")(h)
        ...     x = keras.layers.Add(name=f"block{i}_add")([x, h])
        >>> model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
        >>> report = apply_recipe(model, "fixup", seed=0)
        >>> for row in report.rows[2:5]:
        ...     print(row["path"], "|", row["role"], "|", row["rule"])
        block0_in/kernel | branch | He normal x L^(-1/(2m-2)) = 0.5774 (L=3, m=2)
        block0_in/bias | bias (branch) | 0
        block0_out/kernel | branch end | 0
        >>> bool(np.all(keras.ops.convert_to_numpy(model.get_layer("block2_out").kernel) == 0))
        True

    Args:
        model: a built Keras model or layer.
        recipe: a name of :data:`RECIPES` (``"fixup"``, ``"skipinit"``,
            ``"rezero"``, ``"gpt2"``, ``"megatron"``, ``"olmo_mitchell"``,
            ``"t_fixup"``, ``"deepnorm"``, ``"nf"``) or a :class:`Recipe`.
        data: a batch of inputs for the probed pass (anything ``fit`` takes),
            or None for a synthetic one shaped like the model's input.
        seed: None, or an integer in ``[0, 2**32)``: the same seed draws the
            same values.

    Returns:
        A :class:`~keras_initzoo.models.report.Report`, one row per variable
        touched: ``path``, ``block`` (the join's block, ``—`` outside the
        branches), ``role``, ``rule``, ``target std`` and ``actual std``
        (for a scalar, its value); ``notes`` and ``report.constants`` hold
        the recipe's numbers (DeepNorm's ``alpha`` and ``beta``, ...).

    Raises:
        ValueError: for an unknown recipe (the message lists the names), a
            model without residual branches, a bad seed, or a model the
            recipe cannot be applied to in place (``skipinit`` on a branch
            ending in ReLU, ``deepnorm`` on a pre-LN model), naming why.
    """
    recipe = _check_recipe(recipe)
    check_built(model)
    generator = _check_seed(seed)
    found = walk(model)
    refuse_if_parametrized((site.variable for site in found.kernels), "apply_recipe", model)
    structure = structure_of(model, data)
    rows = recipe.apply(model, structure, found, generator)
    report = Report(rows, COLUMNS, title=f"recipe {recipe.name}: {recipe.paper}")
    report.notes.extend(structure.notes)
    report.constants = dict(structure.constants)
    report.recipe = recipe
    return report

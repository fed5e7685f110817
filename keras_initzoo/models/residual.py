"""The residual stream of a built model: every join, each branch's last kernel, and depth.

How a subclassed ``call`` is read: by a measured probe. One eager forward pass
routes every layer call through a handler (:func:`~keras_initzoo.models.trace.intercept`)
and records each tensor a layer makes. A tensor that reaches a layer without
having been made by one (``x + f(x)`` written in a block's ``call``, as in
KerasHub's transformer layers, Llama and Gemma decoders) is matched against
the tensors already seen: it is a *join* when it equals ``alpha a + beta b`` for
two of them (least squares on a sample of their values, to float rounding), a
*gate* when it equals ``a * b`` or ``a * f(b)`` for a common activation ``f``
(SwiGLU, GeGLU), and an *alias* when it equals ``c a`` (a cast,
a reshape, a scaled embedding). An ``Add`` layer is a join by construction.

Why a probe and not a traced graph or an op hook: it runs the same way on
TensorFlow, JAX and PyTorch, sees exactly the ops the first training step
runs (``training=True`` by default), and needs nothing private of Keras or of
a backend; the values themselves tell a sum from a product.

What it cannot find (each is then simply not a join): a sum that reaches the
next layer only after an op that changes its values (a transpose, a slice, a
second nonlinearity outside any layer); a branch whose output is exactly zero
*and* no zero tensor was recorded (then the sum is an alias of the stream); a
sum of three or more terms in one expression. Tensors made by other ops
inside a layer (an attention product) depend, as far as the probe knows, on
everything that layer received and made so far.

For each join the two inputs are told apart by their ancestry: the side with
fewer kernel layers since the two parted is the skip (an identity skip has
none, a projection shortcut some), the other is the branch. A join's depth is
one more than the number of joins upstream of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from keras_initzoo._validation import check_bool
from keras_initzoo.models.data import as_batch, check_built, run, synthetic_batch
from keras_initzoo.models.report import Report
from keras_initzoo.models.trace import (
    intercept,
    leaf_and_composite_layers,
    state_kept,
    tensors_in,
)
from keras_initzoo.models.walk import NORMALIZATION, walk

SAMPLE = 4096  # values of each tensor kept for matching
RECENT = 24  # how many of the latest same-sized tensors may end a branch
# A gate's activation applied by an op inside a block's call (Llama's silu(gate) * up):
# tried on the latest GATED_PAIRS same-shaped tensors, as Keras names them.
GATE_ACTIVATIONS = ("silu", "gelu", "gelu_approximate", "relu", "sigmoid", "tanh")
GATED_PAIRS = 3
_TOLERANCE = {"float16": 2e-2, "bfloat16": 2e-2, "float32": 1e-4, "float64": 1e-9}


@dataclass(eq=False)
class Node:
    """One step of the traced pass: a layer call, or a tensor the probe matched."""

    index: int
    kind: str  # "layer", "join", "gate", "alias" or "op"
    layer: keras.layers.Layer | None
    scope: str  # path of the innermost layer whose call made it
    ancestors: frozenset[int]
    inputs: tuple[int, ...] = ()  # node indices of the tensors it was made from
    coefficients: tuple[float, ...] = ()  # a join's (alpha, beta), an alias' (c,)
    activation: str | None = None  # a gate u * f(g): the name of f (None for u * g)
    tensor: Any = field(default=None, repr=False)  # its (main) output

    @property
    def path(self) -> str:
        if self.layer is not None:
            return self.layer.path or self.layer.name
        return f"{self.scope}/<{self.kind} {self.index}>"


@dataclass(frozen=True)
class Join:
    """One residual join ``alpha * skip + beta * branch``.

    ``branch`` lists the kernel layers (paths) between where the two parted and
    the join, in call order; ``branch[-1]`` is the branch's last weighted layer.
    ``shortcut`` lists those on the skip side: empty for an identity skip.
    ``scalable`` is the last layer of the branch whose parameters scale its
    output (a kernel layer, or a normalization with a scale after it).
    """

    node: int
    block: str
    depth: int
    how: str
    alpha: float
    beta: float
    skip: int
    branch_end: int
    branch: tuple[str, ...]
    shortcut: tuple[str, ...]
    scalable: str | None

    @property
    def identity(self) -> bool:
        return not self.shortcut


@dataclass
class ResidualTrace:
    """What one probed forward pass found: the nodes in call order and the joins."""

    nodes: list[Node]
    joins: list[Join]
    weighted: set[str]  # paths of the layers that hold kernels

    def block_of(self) -> dict[str, tuple[str, str]]:
        """``{kernel layer path: (block, role)}``, role ``"branch"``, ``"branch end"`` or
        ``"shortcut"``, for every kernel layer inside some join's branch or shortcut."""
        roles: dict[str, tuple[str, str]] = {}
        for join in self.joins:
            for path in join.shortcut:
                roles.setdefault(path, (join.block, "shortcut"))
            for path in join.branch:
                role = "branch end" if path == join.branch[-1] else "branch"
                roles.setdefault(path, (join.block, role))
        return roles

    def layer_nodes(self) -> list[Node]:
        """The layer calls, each layer's first call, in call order."""
        seen, out = set(), []
        for node in self.nodes:
            if node.kind == "layer" and id(node.layer) not in seen:
                seen.add(id(node.layer))
                out.append(node)
        return out


def _sample(tensor: Any) -> np.ndarray:
    values = np.asarray(keras.ops.convert_to_numpy(tensor))
    return values.ravel()[:SAMPLE].astype("float64")


def _is_float(tensor: Any) -> bool:
    return keras.ops.is_tensor(tensor) and keras.backend.is_float_dtype(tensor.dtype)


def _activated(name: str, values: np.ndarray) -> np.ndarray:
    """``f(values)`` for a name of :data:`GATE_ACTIVATIONS`, in float32 as a model runs it."""
    if name == "gelu_approximate":
        function = lambda x: keras.activations.gelu(x, approximate=True)  # noqa: E731
    else:
        function = keras.activations.get(name)
    result = function(keras.ops.convert_to_tensor(values.astype("float32")))
    return np.asarray(keras.ops.convert_to_numpy(result), dtype="float64")


def _fit(target: np.ndarray, columns: list[np.ndarray], tol: float) -> tuple[float, ...] | None:
    """Least-squares coefficients of ``target`` on ``columns`` when they fit to ``tol``."""
    matrix = np.stack(columns, axis=1)
    coefficients, *_ = np.linalg.lstsq(matrix, target, rcond=None)
    residual = np.linalg.norm(matrix @ coefficients - target)
    scale = np.linalg.norm(target)
    if scale == 0.0 or residual > tol * scale:
        return None
    return tuple(float(c) for c in coefficients)


class _Probe:
    """Records every tensor of one eager forward pass and matches the unclaimed ones."""

    def __init__(
        self,
        weighted: set[int],
        embeddings: set[int],
        scalable: set[int],
        *,
        inner: Callable | None = None,
        on_join: Callable[[Join, Any, Any], float | None] | None = None,
        on_node: Callable[[Node, Any], None] | None = None,
    ) -> None:
        self.weighted = weighted  # ids of layers with kernels
        self.embeddings = embeddings  # ids of layers whose kernels are embeddings
        self.scalable = scalable  # ids of layers whose parameters scale their output
        # inner(layer, call, args, kwargs) -> output runs a leaf layer (a tool's own handler)
        self.inner = inner or (lambda layer, call, args, kwargs: call(*args, **kwargs))
        self.on_join = on_join  # as trace's
        self.on_node = on_node  # as trace's
        self.joins: list[Join] = []
        self.corrected: dict[int, Any] = {}  # id(tensor) -> what replaces it from now on
        self.nodes: list[Node] = []
        self.by_tensor: dict[int, int] = {}  # id(tensor) -> node index
        self.keep: list[Any] = []  # references, so that no id is reused during the pass
        self.samples: dict[int, np.ndarray] = {}  # node index -> sample of its values
        self.sizes: dict[int, tuple] = {}  # node index -> (shape, dtype)
        self.scopes: list[tuple[str, int, frozenset[int]]] = [("", 0, frozenset())]

    # -- recording -------------------------------------------------------------------------
    def _add(self, kind, layer, ancestors, inputs=(), coefficients=(), tensor=None) -> Node:
        node = Node(
            len(self.nodes), kind, layer, self.scopes[-1][0], frozenset(ancestors),
            tuple(inputs), tuple(coefficients), tensor,
        )  # fmt: skip
        self.nodes.append(node)
        return node

    def _own(self, tensor: Any, node: Node) -> None:
        self.by_tensor[id(tensor)] = node.index
        self.keep.append(tensor)
        if node.tensor is None:
            node.tensor = tensor
        if node.index not in self.samples:
            self.samples[node.index] = _sample(tensor)
            self.sizes[node.index] = (
                tuple(tensor.shape),
                keras.backend.standardize_dtype(tensor.dtype),
            )

    def source(self, tensor: Any) -> int:
        """The node that made ``tensor``, matching it first if no layer did."""
        known = self.by_tensor.get(id(tensor))
        if known is not None:
            return known
        node = self._match(tensor)
        self._own(tensor, node)
        if node.kind == "join":
            self._joined(node, tensor)
        elif self.on_node is not None:
            self.on_node(node, tensor)
        return node.index

    def _joined(self, node: Node, output: Any) -> Any:
        """Classifies a join node; with ``on_join``, rescales its branch in the pass."""
        join = _classify(self, node)
        if join is None:
            return output
        self.joins.append(join)
        if self.on_join is None:
            return output
        skip = self.nodes[join.skip].tensor
        skip = self.corrected.get(id(skip), skip)
        branch = self.nodes[join.branch_end].tensor
        scale = self.on_join(join, skip, branch)
        if scale is None:
            return output
        replaced = join.alpha * skip + (scale * join.beta) * branch
        self.corrected[id(output)] = replaced
        # the sum's old values still match sums the block writes with it; the new ones are an
        # alias of the join that what follows is called on
        self._own(
            replaced, self._add("alias", None, self.ancestry([node.index]), (node.index,), (1.0,))
        )
        return replaced

    def _substituted(self, structure: Any) -> Any:
        if not self.corrected:
            return structure
        return keras.tree.map_structure(
            lambda x: self.corrected.get(id(x), x) if keras.ops.is_tensor(x) else x, structure
        )

    def ancestry(self, indices) -> set[int]:
        out: set[int] = set()
        for index in indices:
            out.add(index)
            out |= self.nodes[index].ancestors
        return out

    # -- matching an unclaimed tensor ---------------------------------------------------------
    def _candidates(self, shape: tuple, dtype: str, same_shape: bool) -> list[int]:
        size = int(np.prod(shape))
        return [
            i
            for i, (s, d) in self.sizes.items()
            if (s == shape if same_shape else int(np.prod(s)) == size) and d == dtype
        ]

    def _match(self, tensor: Any) -> Node:
        shape = tuple(tensor.shape)
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        tol = _TOLERANCE.get(dtype, 1e-4)
        target = _sample(tensor)
        n = target.size
        same = self._candidates(shape, dtype, same_shape=True)
        recent = same[-RECENT:]
        # an alias (a cast, a reshape, a scaled copy), unless a zero branch was just added to it
        for a in reversed(self._candidates(shape, dtype, same_shape=False)):
            fit = _fit(target, [self.samples[a][:n]], tol)
            if fit is None or fit[0] == 0.0:
                continue
            zeros = [b for b in recent if b > a and not np.any(self.samples[b][:n])]
            if zeros and a in same:
                b = zeros[-1]
                return self._add("join", None, self.ancestry([a, b]), (a, b), (fit[0], 1.0))
            return self._add("alias", None, self.ancestry([a]), (a,), fit)
        # a join alpha a + beta b: b ends a branch (recent), a is the stream (any earlier)
        for b in reversed(recent):
            for a in reversed([i for i in same if i < b]):
                columns = [self.samples[a][:n], self.samples[b][:n]]
                fit = _fit(target, columns, tol)
                if fit is not None and min(abs(c) for c in fit) > 1e-6:
                    return self._add("join", None, self.ancestry([a, b]), (a, b), fit)
        # a gate a * b (a gated linear unit)
        for b in reversed(recent):
            for a in reversed([i for i in recent if i < b]):
                product = self.samples[a][:n] * self.samples[b][:n]
                error = np.linalg.norm(product - target)
                if np.linalg.norm(target) > 0 and error <= tol * np.linalg.norm(target):
                    return self._add("gate", None, self.ancestry([a, b]), (a, b))
        # a gate u * f(g) with the activation applied outside any layer (SwiGLU, GeGLU)
        last = recent[-GATED_PAIRS:]
        for g in reversed(last):
            for u in reversed([i for i in last if i != g]):
                for name in GATE_ACTIVATIONS:
                    gated = self.samples[u][:n] * _activated(name, self.samples[g][:n])
                    error = np.linalg.norm(gated - target)
                    if error <= tol * np.linalg.norm(target):
                        node = self._add("gate", None, self.ancestry([u, g]), (u, g))
                        node.activation = name
                        return node
        # made by some other op inside the current scope: it may depend on anything seen there
        _, start, inputs = self.scopes[-1]
        inside = range(start, len(self.nodes)) if self.scopes[-1][0] else range(0)
        fallback = set(inputs) | set(inside)
        if not fallback and self.nodes:
            fallback = {len(self.nodes) - 1}
        return self._add("op", None, self.ancestry(fallback), sorted(fallback)[-2:])

    # -- the handlers ---------------------------------------------------------------------------
    def leaf(self, layer, call, args, kwargs):
        sources = [self.source(t) for t in tensors_in((args, kwargs)) if _is_float(t)]
        args, kwargs = self._substituted((args, kwargs))
        output = self.inner(layer, call, args, kwargs)
        node = self._add("layer", layer, self.ancestry(sources), sources)
        outputs = [t for t in tensors_in(output) if _is_float(t)]
        for tensor in outputs:  # a pass-through (Dropout at inference) is a new node all the same
            self._own(tensor, node)
        if isinstance(layer, keras.layers.Add) and len(sources) == 2 and outputs:
            node.kind = "join"
            replaced = self._joined(node, outputs[0])
            if replaced is not outputs[0]:
                self.corrected.pop(id(outputs[0]), None)
                return replaced
        return output

    def composite(self, layer, call, args, kwargs):
        sources = [self.source(t) for t in tensors_in((args, kwargs)) if _is_float(t)]
        path = layer.path or layer.name
        self.scopes.append((path, len(self.nodes), frozenset(self.ancestry(sources))))
        try:
            output = call(*args, **kwargs)
            for tensor in tensors_in(output):  # a join that ends the block is the block's
                if _is_float(tensor):
                    self.source(tensor)
        finally:
            self.scopes.pop()
        return self._substituted(output)


def _scales_output(layer: keras.layers.Layer) -> bool:
    """Whether scaling ``layer``'s parameters scales its output (a norm with a scale)."""
    if isinstance(layer, NORMALIZATION):
        return any(v.name in ("gamma", "scale") for v in layer.trainable_weights)
    return False


def trace(
    model: keras.layers.Layer,
    data: Any = None,
    *,
    training: bool = True,
    inner: Callable | None = None,
    on_join: Callable[[Join, Any, Any], float | None] | None = None,
    on_node: Callable[[Node, Any], None] | None = None,
    name: str = "data",
) -> ResidualTrace:
    """One probed forward pass of ``model``; the nodes in call order and the residual joins.

    The model's state (BatchNormalization's moving statistics, dropout's seed)
    is put back afterwards: the pass changes nothing.

    Args:
        model: a built Keras model or layer.
        data: a batch of inputs (anything :func:`~keras_initzoo.models.data.as_batch`
            takes), or None for a synthetic batch shaped like the model's input.
        training: the mode the model runs in; True (the default) as the first
            training step runs it.
        inner: ``inner(layer, call, args, kwargs) -> output`` runs each layer
            without sublayers (a tool that re-draws kernels as it goes); by
            default ``call(*args, **kwargs)``.
        on_join: ``on_join(join, skip, branch) -> scale or None``, called as
            each join is found with its skip and branch tensors: a scale makes
            the pass go on with ``alpha skip + scale beta branch`` (the tool
            rescales the branch's parameters to match).
        on_node: ``on_node(node, tensor)``, called for every other tensor the
            probe matches (a gate, an alias, an op), before the layer it
            reaches runs.
        name: what the data is called in the error raised when it does not fit.

    Returns:
        A :class:`ResidualTrace`.
    """
    check_built(model)
    check_bool("training", training)
    batch = synthetic_batch(model) if data is None else as_batch(data)
    sites = walk(model).kernels
    weighted = {id(site.layer) for site in sites}
    leaves, composites = leaf_and_composite_layers(model)
    scalable = weighted | {id(layer) for layer in leaves if _scales_output(layer)}
    embeddings = {id(site.layer) for site in sites if site.role == "embeddings"}
    probe = _Probe(weighted, embeddings, scalable, inner=inner, on_join=on_join, on_node=on_node)
    with state_kept(model), intercept(leaves, probe.leaf), intercept(composites, probe.composite):
        output = run(model, batch, name if data is not None else "the synthetic batch", training)
        for tensor in tensors_in(output):
            if _is_float(tensor):
                probe.source(tensor)
    return ResidualTrace(probe.nodes, _named(probe.joins), _paths(leaves, weighted))


def _paths(layers: list, ids: set[int]) -> set[str]:
    return {layer.path or layer.name for layer in layers if id(layer) in ids}


def _block_name(node: Node) -> str:
    """An ``Add`` layer's block: its name without a trailing ``_add``; else the scope."""
    if node.layer is not None:
        name = node.layer.path or node.layer.name
        for suffix in ("_add", "/add", "_out"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name
    return node.scope or "model"


def _classify(probe: _Probe, node: Node) -> Join | None:
    """The :class:`Join` a sum node makes, or None when neither side holds a kernel."""
    nodes = probe.nodes
    first, second = node.inputs
    one, two = probe.ancestry([first]), probe.ancestry([second])
    only_one, only_two = one - two, two - one

    def kernels(indices: set[int]) -> list[Node]:  # embeddings start a stream, not a branch
        return [
            nodes[i]
            for i in sorted(indices)
            if nodes[i].kind == "layer"
            and id(nodes[i].layer) in probe.weighted
            and id(nodes[i].layer) not in probe.embeddings
        ]

    k_one, k_two = kernels(only_one), kernels(only_two)
    alpha, beta = node.coefficients or (1.0, 1.0)
    if len(k_one) > len(k_two) or (len(k_one) == len(k_two) and first > second):
        first, second, k_one, k_two, only_two = second, first, k_two, k_one, only_one
        alpha, beta = beta, alpha
    if not k_two:
        return None  # neither side holds a kernel: not a residual branch (an embedding sum)
    ends = [
        nodes[i]
        for i in sorted(only_two)
        if nodes[i].kind == "layer" and id(nodes[i].layer) in probe.scalable
    ]
    upstream = {join.node for join in probe.joins} & (one | two)
    how = (
        "Add layer" if node.layer is not None else f"x + f(x) in {node.scope or 'the model'}'s call"
    )
    return Join(
        node=node.index,
        block=_block_name(node),
        depth=1 + len(upstream),
        how=how,
        alpha=alpha,
        beta=beta,
        skip=first,
        branch_end=second,
        branch=tuple(dict.fromkeys(n.path for n in k_two)),
        shortcut=tuple(dict.fromkeys(n.path for n in k_one)),
        scalable=ends[-1].path if ends else None,
    )


def _named(joins: list[Join]) -> list[Join]:
    """Joins with unique block names: a block with two (attention, MLP) gives block:1, block:2."""
    counts: dict[str, int] = {}
    for join in joins:
        counts[join.block] = counts.get(join.block, 0) + 1
    seen: dict[str, int] = {}
    named = []
    for join in joins:
        if counts[join.block] > 1:
            seen[join.block] = seen.get(join.block, 0) + 1
            join = dataclasses.replace(join, block=f"{join.block}:{seen[join.block]}")
        named.append(join)
    return named


def residual_structure(
    model: keras.layers.Layer, data: Any = None, *, training: bool = True
) -> Report:
    """One row per residual join of a built model: block, depth, join, each branch's last kernel.

    Finds ``Add`` layers and ``x + f(x)`` written inside a subclassed block's
    ``call`` (KerasHub's transformer layers, Llama and Gemma decoders,
    keras.applications' ResNet blocks) by a probed forward pass: see the
    module's docstring for the method and what it cannot find.

    Examples:
        >>> inputs = keras.Input((16,))
        >>> x = inputs
        >>> for i in range(3):
        ...     x = keras.layers.Add(name=f"block{i}_add")(
        ...         [x, keras.layers.Dense(16, activation="relu", name=f"block{i}_dense")(x)])
        >>> report = residual_structure(keras.Model(inputs, x))
        >>> [(row["block"], row["depth"], row["branch end"]) for row in report]
        [('block0', 1, 'block0_dense'), ('block1', 2, 'block1_dense'),
         ('block2', 3, 'block2_dense')]

    Args:
        model: a built Keras model or layer.
        data: a batch of inputs, or None for a synthetic one.
        training: the mode of the probed pass (True: as the first training step).

    Returns:
        A :class:`Report`: ``block``, ``depth`` (1 = first join on the stream),
        ``join`` (how it was found), ``alpha`` and ``beta`` (``alpha * skip +
        beta * branch``), ``branch end`` (the branch's last weighted layer),
        ``kernels`` (how many weighted layers the branch holds) and
        ``shortcut`` (weighted layers on the skip side, ``—`` for identity).
        ``report.trace`` holds the :class:`ResidualTrace`.
    """
    found = trace(model, data, training=training)
    report = Report(
        title="Residual stream: one row per join",
        columns=("block", "depth", "join", "alpha", "beta", "branch end", "kernels", "shortcut"),
    )
    for join in found.joins:
        report.add(
            block=join.block,
            depth=join.depth,
            join=join.how,
            alpha=join.alpha,
            beta=join.beta,
            **{"branch end": join.branch[-1], "kernels": len(join.branch)},
            shortcut=", ".join(join.shortcut) or None,
            branch=join.branch,
        )
    if not found.joins:
        report.notes.append("no residual join found: a plain stack")
    report.trace = found
    return report

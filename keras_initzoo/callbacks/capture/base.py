"""The interface every backend's capture follows, and what all of them share.

A capture owns what happens inside the real train step: it wraps the
optimizer method that sees the applied gradients, reduces them on the device
to one row per recorded step (laid out by :class:`RowLayout`), and hands rows
to the callback in batches. The callback decides when to read and writes
events; it never touches backend code.

Each backend module (``tensorflow.py``, ``jax.py``, ``torch.py``) implements
:meth:`install`, :meth:`uninstall`, :meth:`train_function`, :meth:`read`,
:meth:`read_histograms` and :meth:`iterations`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo.callbacks.capture.forward import ForwardProbe, saturating_names
from keras_initzoo.callbacks.groups import LayerGroup, resolve_layer_groups
from keras_initzoo.callbacks.options import LoggerOptions
from keras_initzoo.callbacks.rows import EMPTY, RowLayout, layout_for
from keras_initzoo.models.walk import walk
from keras_initzoo.mup.optimizers import epsilon_multiplier


class Record(NamedTuple):
    """What one train-function variant records in each of its steps."""

    norms: bool
    histograms: bool


NOTHING = Record(False, False)


def innermost_optimizer(optimizer):
    """The optimizer whose ``apply`` sees unscaled gradients (unwraps LossScaleOptimizer)."""
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def accumulation(optimizer) -> int:
    """How many train steps (micro-batches) make one update: Keras'
    ``gradient_accumulation_steps``, 1 without it."""
    return int(getattr(optimizer, "gradient_accumulation_steps", None) or 1)


def raw_iterations(optimizer):
    """The variable counting train steps, micro-batches included (Keras' ``_iterations``;
    ``iterations`` divides it by the accumulation steps)."""
    return internals.raw_iterations(optimizer)


def applied_gradients(optimizer, grads: Sequence, tvars: Sequence, value_of: Callable) -> list:
    """The gradients the optimizer applies if this step updates the weights.

    With ``gradient_accumulation_steps = k`` Keras applies ``(g + acc) / k``:
    this micro-batch's gradient plus those accumulated since the last update
    (``acc``, read by ``value_of(variable)`` where the backend keeps it), over
    ``k`` (``BaseOptimizer.apply``). Without accumulation, ``grads`` as given.

    Args:
        optimizer: the optimizer that applies the gradients.
        grads: this step's gradients, one per variable of ``tvars``.
        tvars: the trainable variables, in the optimizer's order.
        value_of: reads a variable's value where the backend keeps it.

    Returns:
        The gradients the update would apply, a list in the order of ``tvars``.
    """
    k = accumulation(optimizer)
    if k == 1:
        return list(grads)
    if not optimizer.built:  # its first step builds it: nothing accumulated yet
        return [g if g is None else g / k for g in grads]
    accumulated = internals.accumulated_gradients(optimizer)
    return [
        g if g is None else (g + value_of(accumulated[internals.variable_index(optimizer, v)])) / k
        for g, v in zip(grads, tvars, strict=False)
    ]


# Lanczos steps per kernel for spectral_updates (2 k products with the kernel).
# Golub-Kahan-Lanczos converges to the largest singular value far faster than the
# power method (Chebyshev rather than geometric in the gap): 8 steps keep a rank-2
# update whose two largest singular values are 10 % apart, and Adam-like dense updates,
# within 0.1 % (tests/test_callback_optimizer_stats.py), where 20 power iterations
# (40 products) kept them within 2 %.
LANCZOS_STEPS = 8


def spectral_norms(matrices: Sequence, steps: int) -> Any:
    """The largest singular value of each of ``matrices`` (each reshaped to 2-D on its
    last axis), by ``steps`` steps of Golub-Kahan-Lanczos bidiagonalization.

    From a fixed pseudo-random unit vector ``v_1``, the bidiagonalization builds
    orthonormal ``u_j``, ``v_j`` with ``A v_j = alpha_j u_j + beta_{j-1} u_{j-1}`` and
    ``A^T u_j = alpha_j v_j + beta_j v_{j+1}`` (Golub & Kahan 1965; Golub & Van Loan,
    *Matrix Computations*, section 10.4). The largest singular value of the small upper
    bidiagonal ``B = U^T A V = bidiag(alpha, beta)`` approaches ``||A||_2`` from
    below. Each new vector is re-orthogonalized against the earlier ones (float32
    loses orthogonality otherwise), and ``B`` is formed as ``U^T A V`` (one more
    product), which stays a compression of ``A`` where a matrix of rank below
    ``steps`` ends its Krylov space early.

    Matrices iterate together, one batched product per step: each is turned to have
    at least as many rows as columns (a transpose keeps its singular values) and,
    where that at most doubles the entries iterated on, zero-padded to the largest
    shape (zero rows and columns add no singular value). One loop compiles once;
    a model whose kernels differ widely in shape gets one loop per shape instead.
    In ``keras.ops``.

    Args:
        matrices: the tensors, any shape with at least 2 dimensions.
        steps: Lanczos steps, ``2 * steps`` products with each matrix.

    Returns:
        A float32 vector, one value per matrix, in order.
    """
    ops = keras.ops
    flat = []
    for m in matrices:
        a = ops.reshape(ops.cast(m, "float32"), (-1, m.shape[-1]))
        flat.append(a if a.shape[0] >= a.shape[1] else ops.transpose(a))
    rows = max(a.shape[0] for a in flat)
    columns = max(a.shape[1] for a in flat)
    if len(flat) * rows * columns <= 2 * sum(a.shape[0] * a.shape[1] for a in flat):
        padded = [ops.pad(a, ((0, rows - a.shape[0]), (0, columns - a.shape[1]))) for a in flat]
        by_shape = {(rows, columns): list(range(len(flat)))}
        flat = padded
    else:
        by_shape: dict[tuple, list[int]] = {}
        for index, a in enumerate(flat):
            by_shape.setdefault(tuple(a.shape), []).append(index)
    found: dict[int, Any] = {}
    for (rows, columns), members in by_shape.items():
        a = ops.stack([flat[i] for i in members])  # (k, rows, columns)
        sigma = _largest_singular_values(a, min(steps, rows, columns))
        for position, index in enumerate(members):
            found[index] = sigma[position]
    return ops.stack([found[i] for i in range(len(flat))])


def _largest_singular_values(a: Any, steps: int) -> Any:
    """Golub-Kahan-Lanczos on a batch ``a`` of shape (k, rows, columns): (k,) values.

    Vectors are rows, ``(k, 1, n)``, and bases stack them, ``(k, steps, n)``:
    every product is a row (or a few rows) times a matrix, ``A v`` as
    ``v^T A^T``. PyTorch's CPU batched matrix-vector product (``A @ v``, a
    column) is several times slower than the row form; XLA and TensorFlow
    take either alike.
    """
    ops = keras.ops
    count, rows, columns = a.shape
    start = np.random.default_rng(0).normal(size=(1, 1, columns)).astype("float32")
    v = ops.convert_to_tensor(np.repeat(start / np.linalg.norm(start), count, 0))
    a_t = ops.transpose(a, (0, 2, 1))

    def unit(x):
        return x / ops.maximum(ops.norm(x, axis=2, keepdims=True), 1e-30)

    def orthogonalize(x, basis):  # against the basis' filled rows (the rest are 0)
        for _ in range(2):  # Gram-Schmidt twice: "twice is enough" (Kahan, Parlett)
            x = x - ops.matmul(ops.matmul(x, ops.transpose(basis, (0, 2, 1))), basis)
        return x

    def row(x, j):  # x (k, 1, n) placed as row j of a (k, steps, n) basis
        return x * ops.cast(ops.equal(ops.arange(steps), j), "float32")[:, None]

    u = unit(ops.matmul(v, a_t))
    bases = (row(u, 0), row(v, 0), u)

    def step(j, state):
        us, vs, u = state
        v = unit(orthogonalize(ops.matmul(u, a), vs))
        u = unit(orthogonalize(ops.matmul(v, a_t), us))
        return us + row(u, j), vs + row(v, j), u

    # A loop of fixed-size bases, not unrolled: the traced step stays small.
    us, vs, _ = ops.fori_loop(1, steps, step, bases)
    # The projection U^T A V (the bidiagonal B in exact arithmetic) is formed
    # directly: where the Krylov space ends early (rank below ``steps``), the
    # recurrence's coefficients no longer describe A on the new vectors, but U^T A V
    # with orthonormal (or zero) columns always has singular values at most ||A||_2.
    projected = ops.matmul(ops.matmul(us, a), ops.transpose(vs, (0, 2, 1)))
    return ops.max(ops.svd(projected, compute_uv=False), axis=1)


def spectral_norm(matrix: Any, steps: int) -> Any:
    """The largest singular value of one matrix (see :func:`spectral_norms`)."""
    return spectral_norms([matrix], steps)[0]


def is_due(step: int, freq: int) -> bool:
    """Whether 1-based ``step`` is recorded: steps 1, 1 + freq, 1 + 2 * freq, ..."""
    return (step - 1) % freq == 0


def histogram(values: Sequence, bins: int):
    """``[lo, hi, count_0 .. count_{bins-1}]`` of the finite entries of ``values``.

    Equal-width buckets over the finite range, in ``keras.ops`` (traced by
    JAX, eager on PyTorch); static shapes only, so non-finite entries are
    masked, not dropped. TensorFlow's capture does the same in ``tf`` ops.
    """
    ops = keras.ops
    x = ops.concatenate([ops.reshape(ops.cast(v, "float32"), [-1]) for v in values])
    finite = ops.isfinite(x)
    lo = ops.min(ops.where(finite, x, float("inf")))
    hi = ops.max(ops.where(finite, x, float("-inf")))
    ok = lo <= hi
    lo = ops.where(ok, lo, 0.0)
    width = ops.where(ops.logical_and(ok, hi > lo), hi - lo, 1.0)
    bucket = ops.clip(ops.floor((ops.where(finite, x, lo) - lo) / width * bins), 0, bins - 1)
    counts = ops.segment_sum(ops.cast(finite, "float32"), ops.cast(bucket, "int32"), bins)
    return ops.concatenate([ops.stack([lo, lo + width]), counts])


class Capture:
    """Settings, groups and row layout; the backend parts are in subclasses.

    ``probe_per_call``: the forward probe's routes are put on only around a
    recording call (eager PyTorch, where they would otherwise run at every
    step), not for as long as the capture is installed (a traced backend, where
    they only matter while the recording variant traces).

    Args:
        model: the model whose layers are reported (see :func:`resolve_layer_groups`).
        options: what to record (:class:`~keras_initzoo.callbacks.options.LoggerOptions`):
            steps ``1, 1 + update_freq, ...``, the row's sections, the groups
            and the histograms.
        rows: how many recorded rows may wait on the device between two reads.
        gate_in_graph: True: every step checks the optimizer's iteration count
            against ``update_freq`` and ``histogram_freq`` itself. False: the
            caller sets :attr:`record` before each train-function call and keeps
            one :meth:`train_function` per value.
    """

    probe_per_call = False

    def __init__(
        self, model, options: LoggerOptions, *, rows: int, gate_in_graph: bool = True
    ) -> None:
        self.model = model
        self.options = options
        self.update_freq = options.update_freq
        self.histogram_freq = options.histogram_freq
        self.histogram_bins = options.histogram_bins
        self.rows = int(rows)
        self.gate_in_graph = bool(gate_in_graph)
        self.record = Record(True, self.histogram_freq > 0)
        self.active = True
        self.built = False
        self.groups: list[LayerGroup] = []
        self.probe: ForwardProbe | None = None  # activation_stats, attention_logits
        # Built inside a trace (a subclassed model): the traced variants lack the probe.
        self.stale = False
        self._wrapped: tuple | None = None  # (owner, name, wrapper, what it hid)

    def build(self) -> bool:
        """Resolve the groups and the row layout; False if there is nothing to log.

        Called by the callback when the model is built, otherwise on the first
        step (a subclassed model builds only there).
        """
        if self.built:
            return True
        groups = resolve_layer_groups(self.model, self.options.group_by)
        if not groups:
            return False
        self.groups = list(groups)
        self.variables = [v for g in self.groups for v in g.variables]
        # The group of each variable, and each variable's position, by identity.
        self.layer_of = [gi for gi, g in enumerate(self.groups) for _ in g.variables]
        self.index = {id(v): i for i, v in enumerate(self.variables)}
        names = [g.name for g in self.groups]
        saturating, attention = (), ()
        options = self.options
        if options.forward_pass:
            group_of = {id(v): self.layer_of[i] for i, v in enumerate(self.variables)}
            self.probe = ForwardProbe(
                self.model,
                group_of,
                len(names),
                lambda: self.active and self.record.norms,
                activations=options.activation_stats,
                attention=options.attention_logits,
                logits=options.output_logits,
                loss=options.detect_spikes,
            )
            saturating = saturating_names(names, self.probe.saturating)
            attention = [layer.path for layer in self.probe.attention]
            if self._wrapped is not None and not self.probe_per_call:
                self.probe.install()  # installed, so a step is running: a trace
                self.stale = True
        optimizer = innermost_optimizer(self.model.optimizer)
        # The logged kernels whose update's spectral norm is taken: (variable index, site).
        sites = walk(self.model).kernels if options.spectral_updates else []
        self.spectral_sites = [
            (self.index[id(s.variable)], s) for s in sites if id(s.variable) in self.index
        ]
        self.layout: RowLayout = layout_for(
            names,
            [v.path for v in self.variables],
            saturating,
            attention,
            adam=isinstance(optimizer, keras.optimizers.Adam),
            spectral=tuple(site.path for _, site in self.spectral_sites),
            group_sizes=tuple(sum(int(np.prod(v.shape)) for v in g.variables) for g in self.groups),
            **options.row_switches,
        )
        self._create()
        self.built = True
        return True

    def epsilon_counts(self, optimizer, values_of: Callable) -> list:
        """Per logged variable, how many entries have ``sqrt(v) < epsilon`` (Adam's second
        moment ``v`` read by ``values_of(velocity variable)``, after the update):
        where epsilon, not the gradient's scale, sets the step. ``epsilon`` is the
        optimizer's, times kiz.mup's multiplier for the variable."""
        velocities = internals.adam_velocities(optimizer)
        ops = keras.ops
        counts = []
        for variable in self.variables:
            v = values_of(velocities[internals.variable_index(optimizer, variable)])
            epsilon = optimizer.epsilon * epsilon_multiplier(optimizer, variable)
            small = ops.sqrt(ops.cast(v, "float32")) < epsilon
            counts.append(ops.sum(ops.cast(small, "float32")))
        return ops.stack(counts)

    def spectral_sizes(self, deltas: Sequence) -> Any:
        """``||dW||_2 / sqrt(fan_out / fan_in)`` of each kernel in :attr:`spectral_sites`.

        ``deltas`` are the logged variables' updates, by variable index. A
        kernel is taken as the matrix ``(prod(shape[:-1]), shape[-1])`` (a conv
        kernel's receptive field and input channels by its output channels),
        its fans are the walk's (one gate block's, for a stacked recurrent
        kernel), and its largest singular value comes from
        :data:`LANCZOS_STEPS` Lanczos steps from a fixed start.
        """
        norms = spectral_norms([deltas[index] for index, _ in self.spectral_sites], LANCZOS_STEPS)
        scale = [np.sqrt(site.fan_in / site.fan_out) for _, site in self.spectral_sites]
        return norms * keras.ops.convert_to_tensor(np.asarray(scale, np.float32))

    def forward_sections(self) -> list:
        """This step's forward sections for :func:`~keras_initzoo.callbacks.rows.build_row`."""
        return self.probe.take() if self.probe is not None else []

    def _create(self) -> None:
        """Backend buffers, once the layout is known."""

    def pairs(self, grads: Sequence, tvars: Sequence) -> tuple[list, list[int], list]:
        """Split the applied gradients: (grouped ones, their variable indices, the rest).

        A variable outside every group still counts towards the global norm; one
        the optimizer overwrites with its "gradient" (float8 scales) counts nowhere.
        """
        known, idx, other = [], [], []
        for _, g, i in self._applied(grads, tvars):
            if i is None:
                other.append(g)
            else:
                known.append(g)
                idx.append(i)
        return known, idx, other

    def applied_positions(self, grads: Sequence, tvars: Sequence) -> list[int]:
        """Where, in ``tvars``, the gradients of :meth:`pairs`' ``known + other`` are."""
        applied = list(self._applied(grads, tvars))
        known = [position for position, _, i in applied if i is not None]
        return known + [position for position, _, i in applied if i is None]

    def _applied(self, grads: Sequence, tvars: Sequence):
        """``(position in tvars, gradient, logged variable index or None)`` of each
        gradient the optimizer applies (see :meth:`pairs`)."""
        for position, (g, v) in enumerate(zip(grads, tvars, strict=False)):
            if g is not None and not getattr(v, "overwrite_with_gradient", False):
                yield position, g, self.index.get(id(v))

    # -- installing -----------------------------------------------------------------
    def _wrap(self, owner, name: str, wrapper: Callable) -> None:
        """Sets ``owner.<name>`` to ``wrapper`` (an instance attribute) and starts capturing."""
        self._wrapped = (owner, name, wrapper, owner.__dict__.get(name))
        self.active = True
        setattr(owner, name, wrapper)
        if self.probe is not None and not self.probe_per_call:
            self.probe.install()

    def uninstall(self) -> None:
        """Stop capturing; restore the wrapped method if nobody wrapped it after us."""
        self.active = False
        if self.probe is not None:
            self.probe.uninstall()
        if self._wrapped is None:
            return
        owner, name, wrapper, hidden = self._wrapped
        self._wrapped = None
        if owner.__dict__.get(name) is wrapper:
            if hidden is None:
                del owner.__dict__[name]
            else:
                setattr(owner, name, hidden)

    # -- the backend's part ---------------------------------------------------------
    def install(self, optimizer) -> None:
        """Wrap the optimizer method that sees the applied gradients (via :meth:`_wrap`)."""
        raise NotImplementedError

    def train_function(self, record: Record) -> Callable:
        """A train function (as Keras calls it) whose steps record ``record``."""
        raise NotImplementedError

    def plain_function(self, keras_function: Callable) -> Callable:
        """Keras' own train function, as the variant that records nothing."""
        return keras_function

    def read(self) -> np.ndarray:
        """The rows recorded since the last read (``n x width``, float64); rows
        whose step is not above the last logged one are dropped by the caller."""
        raise NotImplementedError

    def read_histograms(self) -> np.ndarray | None:
        """Histogram rows (``n x groups x (3 + bins)``), or None without histograms."""
        raise NotImplementedError

    def discard(self) -> None:
        """Drops what was recorded since the last read, unread (a process that
        writes no events); a ring of variables (TensorFlow) is overwritten anyway."""

    def raw_iterations(self) -> int:
        """Train steps run so far, micro-batches of gradient accumulation included."""
        raise NotImplementedError

    def iterations(self) -> int:
        """The optimizer's iteration count (updates) after the last step run."""
        return self.raw_iterations() // self.accumulation

    @property
    def accumulation(self) -> int:
        """Train steps per update (``gradient_accumulation_steps``, else 1)."""
        return accumulation(innermost_optimizer(self.model.optimizer))


class QueuedCapture(Capture):
    """A capture whose step hands back ``(step, row)`` device arrays, queued until read.

    JAX and PyTorch: rows wait as device arrays in a host-side list, and a read
    moves them all at once (:meth:`_fetch`). A histogram row holds one
    ``[lo, hi, counts...]`` per group; groups without gradients
    (``_hist_present`` False) get step ``EMPTY``, as on TensorFlow.

    Args:
        model: the model whose train step records (see :class:`Capture`).
        options: what to record, the logger's checked options.
        **settings: :class:`Capture`'s keyword arguments: ``rows``, ``gate_in_graph``.
    """

    def __init__(self, model, options: LoggerOptions, **settings) -> None:
        super().__init__(model, options, **settings)
        self._rows: list = []
        self._hists: list = []
        self._hist_present = None

    def _fetch(self, pairs: list) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, stacked values)`` of ``(step, values)`` pairs, in one transfer."""
        raise NotImplementedError

    def discard(self) -> None:
        self._rows, self._hists = [], []  # no transfer: the device arrays are freed

    def read(self) -> np.ndarray:
        rows, self._rows = self._rows, []
        if not rows:
            return np.zeros((0, self.layout.width if self.built else 1))
        steps, values = self._fetch(rows)
        values = values.astype(np.float64)
        values[:, self.layout.span("step")] = steps.astype(np.float64)[:, None]
        return values

    def read_histograms(self) -> np.ndarray | None:
        if not self.histogram_freq:
            return None
        hists, self._hists = self._hists, []
        if not hists:
            return np.zeros((0, len(self.groups), 3 + self.histogram_bins))
        steps, rows = self._fetch(hists)
        head = np.where(self._hist_present[None, :], steps.astype(np.float64)[:, None], EMPTY)
        return np.concatenate([head[:, :, None], rows.astype(np.float64)], axis=2)

"""TensorFlow side of GradientNormLogger: capture the applied gradients in the train step.

The optimizer instance that really applies the gradients (the inner optimizer of
a ``LossScaleOptimizer``) gets its ``apply`` wrapped. The wrapper runs inside the
compiled train function, so the reductions are graph ops on the device: sums of
squares of all variables in a few stacked ops (:func:`squared_sums`), summed per
layer, packed into one float64 row and written into a ring-buffer ``tf.Variable``
that the callback reads with a single ``.numpy()`` now and then.

Which steps are recorded is decided in one of two places. With one step per
train-function call, the callback decides on the host: it keeps one traced
train function per :class:`Record` (what to record) and calls the one that is
due, so a step that logs nothing runs the plain train step. With several steps
per call (``steps_per_execution``) the capture gates itself in the graph on the
optimizer's iteration count, with an unlowered ``tf.cond`` (see :func:`_cond`).

Each row of :attr:`GradientCapture.values` (``rows x width``, float64) is laid
out by :class:`keras_initzoo.callbacks.rows.RowLayout`, section by name.
``step`` is the optimizer's iteration count after the update (the first step is
1), ``-1`` marks a row never written. The ``k``-th recorded row goes to row
``k mod rows``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_initzoo import _keras_internals as internals
from keras_initzoo.callbacks.capture.base import (
    NOTHING,
    Capture,
    Record,
    accumulation,
    applied_gradients,
    innermost_optimizer,
    raw_iterations,
)
from keras_initzoo.callbacks.rows import EMPTY, build_row
from keras_initzoo.optimizers import clip_as_applied

# Tensors of one shape and dtype up to this many elements are reduced together,
# this many at a time: a stack waits for all of its members, so a deep model's
# first gradients would otherwise stay alive until its last ones exist.
_STACK_LIMIT = 1 << 12
_STACK_CHUNK = 32


class _TfRowOps:
    """:class:`~keras_initzoo.callbacks.rows.RowOps` in TensorFlow graph ops, float64."""

    def scalar(self, value) -> tf.Tensor:
        return tf.reshape(tf.cast(value, tf.float64), [1])

    def total(self, values) -> tf.Tensor:
        return self.scalar(tf.reduce_sum(values))

    def segment_sum(self, values, segments, n: int) -> tf.Tensor:
        # static segments: variables without a gradient add 0
        return tf.math.unsorted_segment_sum(values[: len(segments)], list(segments), n)

    def scatter(self, values, positions, n: int) -> tf.Tensor:
        return tf.scatter_nd([[i] for i in positions], values[: len(positions)], [n])

    def zeros(self, n: int) -> tf.Tensor:
        return tf.zeros([n], tf.float64)

    def concat(self, parts) -> tf.Tensor:
        return tf.concat([tf.cast(p, tf.float64) for p in parts], 0)


_ROW_OPS = _TfRowOps()


def _dense(g) -> tf.Tensor:
    if isinstance(g, tf.IndexedSlices):
        # Repeated indices add up in the dense gradient: merge them first.
        uniq, pos = tf.unique(g.indices)
        return tf.math.unsorted_segment_sum(g.values, pos, tf.shape(uniq)[0])
    return tf.convert_to_tensor(g)


def _accumulator(dtype: tf.DType) -> tf.DType:
    """float32 for 16- and 32-bit values, float64 for float64 ones."""
    return tf.float64 if dtype == tf.float64 else tf.float32


def squared_sums(
    tensors: Sequence, count_nonfinite: bool = False
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """``sum(t**2)`` of each tensor as one float64 vector, in a handful of ops.

    Per-op dispatch, not arithmetic, dominates a deep model's many small kernels
    and biases, and each op added to the train step costs microseconds: tensors
    of one shape and dtype (up to ``_STACK_LIMIT`` elements) are stacked and
    reduced by one op; larger ones get one fused ``l2_loss`` each, and all the
    scalars of one accumulator dtype are packed, doubled and cast together.
    Accumulation is in float32 (float64 for float64 tensors).

    With ``count_nonfinite``, also returns how many entries are NaN or inf, as a
    float64 scalar (else None). Each group is counted only if its own sum is not
    finite, by a ``tf.cond`` of its own: one condition over all tensors would
    keep every gradient alive until the last one exists, which costs more than
    the counting (about 5 % of a 20-layer MLP's step).
    """
    tensors = [_dense(t) for t in tensors]
    buckets: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        small = t.shape.is_fully_defined() and t.shape.num_elements() <= _STACK_LIMIT
        key = (tuple(t.shape), t.dtype) if small else ("single", i)
        members = buckets.setdefault(key, [])
        if len(members) == _STACK_CHUNK:  # full: filed under a key of its own
            buckets[key + (i,)] = members
            members = buckets[key] = []
        members.append(i)
    halves: dict[tf.DType, list] = {}  # accumulator dtype -> [(index, sum(t**2) / 2)]
    pieces, order, counts = [], [], []

    def count(sq: tf.Tensor, members: list[int]) -> None:
        if count_nonfinite:
            counts.append(
                _cond(
                    tf.math.is_finite(tf.reduce_sum(sq)),
                    lambda: tf.constant(0.0, tf.float64),
                    lambda: tf.add_n([_nonfinite(tensors[i]) for i in members]),
                )
            )

    for members in buckets.values():
        dtype = _accumulator(tensors[members[0]].dtype)
        if len(members) == 1:
            # l2_loss = sum(t**2) / 2 in one fused pass, no temporary for t**2.
            half = tf.nn.l2_loss(tf.cast(tensors[members[0]], dtype))
            halves.setdefault(dtype, []).append((members[0], half))
            count(half, members)
            continue
        block = tf.cast(tf.stack([tensors[i] for i in members]), dtype)
        sq = tf.reduce_sum(tf.square(block), axis=list(range(1, block.shape.rank)))
        count(sq, members)
        pieces.append(tf.cast(sq, tf.float64))
        order += members
    for scalars in halves.values():
        pieces.append(tf.cast(2.0 * tf.stack([h for _, h in scalars]), tf.float64))
        order += [i for i, _ in scalars]
    flat = tf.concat(pieces, 0) if len(pieces) > 1 else pieces[0]
    if order != sorted(order):
        inverse = [0] * len(order)
        for position, i in enumerate(order):
            inverse[i] = position
        flat = tf.gather(flat, inverse)
    if not count_nonfinite:
        return flat, None
    return flat, tf.add_n(counts) if len(counts) > 1 else counts[0]


def _nonfinite(g) -> tf.Tensor:
    if isinstance(g, tf.IndexedSlices):
        g = g.values
    return tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(g)), tf.float64))


def _cond(pred: tf.Tensor, true_fn: Callable, false_fn: Callable) -> tf.Tensor:
    """``tf.cond`` whose branch not taken costs nothing, however many tensors it reads.

    In a ``tf.function`` TensorFlow lowers ``If`` to Switch/Merge nodes, one
    Switch per tensor a branch captures, all run every step: with every gradient
    of a deep model captured, that alone costs several per cent of a step. An
    ``If`` left unlowered calls its branch function only when taken.
    """
    out = tf.cond(pred, true_fn, false_fn)
    if not tf.executing_eagerly():
        op = out.op.inputs[0].op if out.op.type == "Identity" else out.op
        if op.type in ("If", "StatelessIf"):
            internals.tf_keep_unlowered(op)
    return out


def _when(pred: tf.Tensor | None, fn: Callable[[], None]) -> None:
    """Run ``fn``'s ops only where ``pred`` holds (graph-friendly ``if``); None: always."""
    if pred is None:
        fn()
        return

    def taken():
        fn()
        return tf.constant(True)

    _cond(pred, taken, lambda: tf.constant(False))


def _read(variable) -> tf.Tensor:
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return tf.convert_to_tensor(variable)


def _sum_replicas(strategy) -> Callable:
    """Densify a gradient; in cross-replica context add up the replicas' parts."""
    if strategy is None:
        return lambda g: g

    def densify(g):
        parts = [tf.convert_to_tensor(p) for p in strategy.experimental_local_results(g)]
        return tf.add_n(parts) if len(parts) > 1 else parts[0]

    return densify


class TensorFlowCapture(Capture):
    """Device buffers (``tf.Variable``) and the wrapper around ``optimizer.apply``.

    Args:
        model: the model whose train step records (see :class:`Capture`).
        options: what to record, the logger's checked options.
        **settings: :class:`Capture`'s keyword arguments: ``rows``, ``gate_in_graph``.
    """

    def __init__(self, model, options, **settings) -> None:
        super().__init__(model, options, **settings)
        self.hist = None

    def build(self) -> bool:
        with tf.init_scope():  # variables live outside any traced function
            return super().build()

    def _create(self) -> None:
        # Plain (not mirrored) variables: under a strategy they are only touched
        # in cross-replica context, inside merge_call.
        def variable(value, name):
            return tf.Variable(value, trainable=False, name=name)

        empty = tf.constant(EMPTY, tf.float64)
        self.values = variable(tf.fill([self.rows, self.layout.width], empty), "kiz_grad_norms")
        # Rows recorded so far: the next row goes to ``recorded mod rows``.
        self.recorded = variable(tf.constant(0, tf.int64), "kiz_grad_norm_rows")
        if self.histogram_freq:
            shape = [self.rows, len(self.groups), 3 + self.histogram_bins]
            self.hist = variable(tf.fill(shape, empty), "kiz_grad_hists")
            self.hist_recorded = variable(tf.constant(0, tf.int64), "kiz_grad_hist_rows")
        self.snapshots = []
        if self.layout.has("updates"):
            # Weights before the update, copied only on recorded steps.
            self.snapshots = [
                variable(tf.zeros(v.shape, v.dtype), "kiz_snapshot") for v in self.variables
            ]

    # -- installing -----------------------------------------------------------------
    def install(self, optimizer) -> None:
        """Wrap ``apply`` of the optimizer that applies the (unscaled) gradients."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        forward = self.options.forward_pass
        if forward and replicas > 1:
            # Each replica's forward holds its own statistics; the row is written once,
            # in cross-replica context, where they are not reduced (yet).
            raise ValueError(
                f"`{forward[0]}` is not available under a tf.distribute strategy with "
                f"several replicas (here {replicas}); log it on one device, or on JAX "
                "under keras.distribution, where the statistics are of the global batch."
            )
        target = innermost_optimizer(optimizer)
        inner = target.apply
        capture = self

        def apply(grads, trainable_variables=None):
            record = capture.record  # read while tracing: fixed in the traced graph
            if not capture.active or record == NOTHING:
                return inner(grads, trainable_variables)
            raw_grads = grads = list(grads)
            if trainable_variables is None:
                tvars = internals.optimizer_trainable_variables(target)
            else:
                trainable_variables = list(trainable_variables)
                tvars = trainable_variables
            if not capture.build():
                return inner(grads, trainable_variables)
            layout = capture.layout
            # read before the update, which resets what gradient accumulation gathered
            grads = applied_gradients(target, grads, tvars, _read)
            if not record.norms or not layout.has("weights"):
                # Recorded after the update: stateful ops run in program order, so
                # recording first would hold every variable's update until all
                # gradients exist, losing the overlap of backprop and updates.
                result = inner(raw_grads, trainable_variables)
                capture._record(record, target, grads, tvars, steps_ahead=0)
                return result
            # Weight norms and update ratios need the weights before the update.
            capture._record(record, target, grads, tvars, steps_ahead=1)
            result = inner(raw_grads, trainable_variables)
            if layout.has("updates"):
                capture._after(target)
            return result

        self._wrap(target, "apply", apply)

    def train_function(self, record: Record):
        """Keras' train function traced afresh with ``record`` fixed in the graph."""
        model = self.model
        previous, self.record = self.record, record  # read while tracing
        try:
            model.make_train_function(force=True)
        finally:
            self.record = previous
        return model.train_function

    # -- reading --------------------------------------------------------------------
    def read(self) -> np.ndarray:
        """All ring-buffer rows (one device-to-host transfer); old ones come again."""
        return self.values.numpy()

    def read_histograms(self) -> np.ndarray | None:
        return None if self.hist is None else self.hist.numpy()

    def raw_iterations(self) -> int:
        return int(raw_iterations(innermost_optimizer(self.model.optimizer)).numpy())

    # -- graph side -----------------------------------------------------------------
    def _merge(self, fn: Callable, *args) -> None:
        """Run ``fn(strategy_or_None, *args)`` once, in cross-replica context if distributed."""
        ctx = tf.distribute.get_replica_context()
        strategy = tf.distribute.get_strategy()
        if ctx is not None and strategy.num_replicas_in_sync > 1:
            # Replicas hold unreduced gradients here (Keras all-reduces later, in
            # _backend_update_step); the applied gradient is their sum.
            ctx.merge_call(lambda strat, *a: fn(strat, *a), args=args)
        else:
            fn(None, *args)

    def _step(self, target, steps_ahead: int = 0) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The update's count, and the predicate "this step updates" (None: every step does).

        ``steps_ahead`` is 1 before the update, 0 after. With gradient
        accumulation only every ``k``-th train step updates the weights.
        """
        raw = tf.cast(_read(raw_iterations(target)), tf.int64) + steps_ahead
        k = accumulation(target)
        if k == 1:
            return raw, None
        return tf.math.floordiv(raw, k), tf.equal(tf.math.floormod(raw, k), 0)

    def _gate(self, step: tf.Tensor, freq: int, updates: tf.Tensor | None) -> tf.Tensor | None:
        """Predicate "step is recorded" for 1-based ``step``; None means always."""
        due = None
        if freq != 1 and self.gate_in_graph:
            due = tf.equal(tf.math.floormod(step - 1, freq), 0)
        if updates is None or due is None:
            return due if updates is None else updates
        return tf.logical_and(updates, due)

    def _next_slot(self, counter: tf.Variable) -> tf.Tensor:
        """The ring-buffer row for the next recorded row; advances ``counter``."""
        slot = tf.math.floormod(counter.read_value(), self.rows)
        counter.assign_add(1)
        return slot

    def _record(self, record: Record, target, grads: list, tvars: list, steps_ahead: int):
        """Record this update's row; ``steps_ahead`` is 1 before the update, 0 after."""
        known, idx, other = self.pairs(grads, tvars)
        if not known and not other:
            return
        scale = getattr(target, "loss_scale_factor", None)
        inv_sq = 1.0 / float(scale) ** 2 if scale else 1.0
        order = self.applied_positions(grads, tvars)
        clipped_vars = [tvars[p] for p in order]
        # Before the update the variables hold the weights AGC's limits come from.
        weights = clipped_vars if steps_ahead == 1 else None

        def record_row(strategy, known_grads, other_grads):
            densify = _sum_replicas(strategy)
            step, updates = self._step(target, steps_ahead)  # the count once it is applied
            if record.norms:
                # Reduced before the gate: a condition reading the gradients would
                # keep all of them alive until the last one exists (see squared_sums).
                gs = [densify(g) for g in known_grads + other_grads]
                sums, nonfinite = squared_sums(gs, count_nonfinite=self.layout.count_nonfinite)
                if inv_sq != 1.0:
                    sums = sums * inv_sq
                clipped = None
                if self.layout.log_clipped:
                    # The optimizer's own rule (clipnorm, global_clipnorm or
                    # clipvalue) on the unscaled gradients, as its apply does.
                    unscaled = gs if inv_sq == 1.0 else [g / scale for g in gs]
                    clipped, _ = squared_sums(
                        clip_as_applied(target, unscaled, clipped_vars, weights)
                    )
                _when(
                    self._gate(step, self.update_freq, updates),
                    lambda: self._record_norms(step, sums, nonfinite, idx, clipped),
                )
            if record.histograms:
                _when(
                    self._gate(step, self.histogram_freq, updates),
                    lambda: self._record_histograms(step, known_grads, idx, densify),
                )

        self._merge(record_row, known, other)

    def _record_norms(self, step, sums, nonfinite, idx: list[int], clipped=None) -> None:
        """Write one row; ``sums[:len(idx)]`` are the grouped variables' squared sums."""
        layout = self.layout
        reductions = {"nonfinite": 0.0 if nonfinite is None else nonfinite, "clipped": clipped}
        if layout.has("weights"):
            reductions["weights"], _ = squared_sums([_read(v) for v in self.variables])
        if layout.has("updates"):
            for snap, v in zip(self.snapshots, self.variables, strict=True):
                snap.assign(_read(v))  # the ratios are filled in by _after
        row = build_row(
            layout,
            _ROW_OPS,
            group_of=self.layer_of,
            grouped=idx,
            sums=sums,
            step=step,
            forward=self.forward_sections(),
            **reductions,
        )
        slot = self._next_slot(self.recorded)
        self.values.scatter_nd_update([[slot]], row[None])

    def _after(self, target) -> None:
        """Fill in what the update decides, in the row recorded before it: the update's
        size per group and, for Adam, how many entries epsilon dominates."""
        layout = self.layout
        n_groups = len(layout.groups)

        def fill(slot, section: str, values) -> None:
            span = layout.span(section)
            width = span.stop - span.start
            columns = tf.range(span.start, span.stop, dtype=tf.int64)
            cells = tf.stack([tf.fill([width], slot), columns], axis=1)
            self.values.scatter_nd_update(cells, tf.cast(values, tf.float64))

        def per_group(per_variable):
            return tf.math.unsorted_segment_sum(per_variable, self.layer_of, n_groups)

        def record(strategy):
            step, updating = self._step(target)  # already incremented by the update

            def statistics() -> dict[str, tf.Tensor]:
                deltas = [
                    _read(v) - _read(s) for s, v in zip(self.snapshots, self.variables, strict=True)
                ]
                values = {"updates": per_group(squared_sums(deltas)[0])}
                if layout.has("eps_small"):
                    values["eps_small"] = per_group(self.epsilon_counts(target, _read))
                if layout.spectral:
                    values["spectral"] = self.spectral_sizes(deltas)
                return values

            def compute():
                slot = tf.math.floormod(self.recorded.read_value() - 1, self.rows)
                # A few hundred small ops (the Lanczos loop, a count per variable),
                # each dispatched on its own by TensorFlow's executor, cost more than
                # their arithmetic: one XLA program runs them 2-4x faster. Not across
                # replicas, whose mirrored variables XLA does not take.
                run = statistics
                if strategy is None:
                    run = tf.function(statistics, jit_compile=True, autograph=False)
                for section, values in run().items():
                    fill(slot, section, values)

            _when(self._gate(step, self.update_freq, updating), compute)

        self._merge(record)

    def _record_histograms(self, step, grads, idx, densify) -> None:
        bins = self.histogram_bins
        per_layer: list[list] = [[] for _ in self.groups]
        for g, i in zip(grads, idx, strict=True):
            g = tf.convert_to_tensor(densify(g))
            per_layer[self.layer_of[i]].append(tf.reshape(tf.cast(g, tf.float64), [-1]))
        rows = []
        for flat_parts in per_layer:
            if not flat_parts:
                rows.append(tf.fill([3 + bins], tf.constant(EMPTY, tf.float64)))
                continue
            x = tf.concat(flat_parts, 0)
            finite = tf.math.is_finite(x)
            # Static shapes only (XLA): non-finite values are masked, not dropped.
            lo = tf.reduce_min(tf.where(finite, x, tf.constant(float("inf"), tf.float64)))
            hi = tf.reduce_max(tf.where(finite, x, tf.constant(float("-inf"), tf.float64)))
            ok = lo <= hi
            lo = tf.where(ok, lo, 0.0)
            width = tf.where(tf.logical_and(ok, hi > lo), hi - lo, 1.0)
            pos = tf.math.floor((tf.where(finite, x, lo) - lo) / width * bins)
            bucket = tf.clip_by_value(tf.cast(pos, tf.int32), 0, bins - 1)
            counts = tf.math.unsorted_segment_sum(tf.cast(finite, tf.float64), bucket, bins)
            head = tf.stack([tf.cast(step, tf.float64), lo, lo + width])
            rows.append(tf.concat([head, counts], 0))
        slot = self._next_slot(self.hist_recorded)
        self.hist.scatter_nd_update([[slot]], tf.stack(rows)[None])

"""JAX side of GradientNormLogger: the row comes out of the compiled, stateless train step.

Keras' JAX trainer calls ``optimizer.stateless_apply(optimizer_variables, grads,
trainable_variables)`` inside a jitted step, so nothing stateful can be wrapped.
Instead, the recording variant of the train function is Keras' own
``train_step`` with the outermost optimizer's ``stateless_apply`` wrapped: while
it traces, the wrapper reduces the gradients it is handed and leaves the row
(a traced array) for the step, which returns it as one more output. The step
is jitted like Keras jits its own (state donated, the same output shardings
under ``keras.distribution``), so there is no extra forward or backward pass,
no variable added to the optimizer (nothing extra in checkpoints) and no
host transfer: rows stay device arrays until :meth:`JaxCapture.read` fetches
them all in one ``jax.device_get``.

Under a ``LossScaleOptimizer`` the wrapper sits on the outer optimizer (the
inner one is called inside a ``lax.cond`` branch, where a traced row could not
escape): gradients are divided by the loss scale the step used, and a step the
scaler skips (the inner optimizer's iteration count does not move) gives a row
with step ``EMPTY``, so it is not logged, as on TensorFlow. Under
``keras.distribution.DataParallel`` the gradients the optimizer sees are those
of the global batch; so are the norms.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo._shadowing import shadow
from keras_initzoo.callbacks.capture.base import (
    NOTHING,
    QueuedCapture,
    Record,
    accumulation,
    applied_gradients,
    histogram,
    innermost_optimizer,
    raw_iterations,
)
from keras_initzoo.callbacks.rows import build_row
from keras_initzoo.optimizers import clip_as_applied


def _accumulator(x) -> jnp.dtype:
    """float32 for 16- and 32-bit values, float64 for float64 ones (with x64 on)."""
    return jnp.float64 if x.dtype == jnp.float64 else jnp.float32


def squared_sums(tensors: Sequence) -> jax.Array:
    """``sum(t**2)`` of each tensor as one float32 vector, each tensor read once.

    The optimization barrier keeps XLA from sharing ``t**2`` with the
    optimizer's own square of the gradient (Adam's second moment): shared,
    the square is written out in full and read twice more, three reads of every
    gradient where the fused reduction needs one (``cost_analysis`` of the
    recording step; tests/test_callback_gradient_norm_cost.py).
    """
    tensors = jax.lax.optimization_barrier(list(tensors))
    return jnp.stack([jnp.sum(jnp.square(t.astype(_accumulator(t)))) for t in tensors]).astype(
        jnp.float32
    )


class _JaxRowOps:
    """:class:`~keras_initzoo.callbacks.rows.RowOps` in traced ``jax.numpy``, float32."""

    def scalar(self, value) -> jax.Array:
        return jnp.reshape(jnp.asarray(value, jnp.float32), (1,))

    def total(self, values) -> jax.Array:
        return jnp.sum(values)[None]

    def segment_sum(self, values, segments, n: int) -> jax.Array:
        ids = jnp.asarray(np.asarray(segments, np.int32))
        return jax.ops.segment_sum(values[: len(segments)], ids, n)

    def scatter(self, values, positions, n: int) -> jax.Array:
        at = np.asarray(positions, np.int32)
        return jnp.zeros(n, jnp.float32).at[at].set(values[: len(positions)])

    def zeros(self, n: int) -> jax.Array:
        return jnp.zeros(n, jnp.float32)

    def concat(self, parts) -> jax.Array:
        return jnp.concatenate([p.astype(jnp.float32) for p in parts])


_ROW_OPS = _JaxRowOps()


def _nonfinite(tensors: Sequence) -> jax.Array:
    return sum(jnp.sum(~jnp.isfinite(t)).astype(jnp.float32) for t in tensors)


class JaxCapture(QueuedCapture):
    """Rows returned by the jitted train step, kept as device arrays until read.

    Args:
        model: the model whose train step records (see :class:`Capture`).
        options: what to record, the logger's checked options.
        **settings: :class:`Capture`'s keyword arguments: ``rows``, ``gate_in_graph``.
    """

    def __init__(self, model, options, **settings) -> None:
        super().__init__(model, options, **settings)
        self._out: dict | None = None  # filled while our train step traces
        self._last_iterations = None  # the iteration count of the last state returned
        self.steps: dict[Record, Callable] = {}  # the step each train function runs

    # -- installing -----------------------------------------------------------------
    def install(self, optimizer) -> None:
        """Wrap ``stateless_apply`` of the outermost optimizer (see the module docstring)."""
        inner = optimizer.stateless_apply
        capture = self
        position = {id(v): i for i, v in enumerate(optimizer.variables)}
        innermost = innermost_optimizer(optimizer)
        iteration_at = position[id(raw_iterations(innermost))]
        scale_at = position.get(id(getattr(optimizer, "dynamic_scale", None)))
        k = accumulation(innermost)

        def stateless_apply(optimizer_variables, grads, trainable_variables):
            record, out = capture.record, capture._out
            if out is None or not capture.active or record == NOTHING or not capture.build():
                return inner(optimizer_variables, grads, trainable_variables)
            # the accumulated gradients as they are before this step, which may reset them
            tvars = internals.optimizer_trainable_variables(optimizer)
            scale = 1.0 if scale_at is None else optimizer_variables[scale_at]
            scale = scale * (getattr(innermost, "loss_scale_factor", None) or 1.0)
            unscaled = [g if g is None else g / scale for g in grads]
            applied = applied_gradients(
                innermost, unscaled, tvars, lambda v: optimizer_variables[position[id(v)]]
            )
            new_trainable, new_optimizer = inner(optimizer_variables, grads, trainable_variables)
            before, after = optimizer_variables[iteration_at], new_optimizer[iteration_at]
            # The update's count; a skipped update does not move it, and with gradient
            # accumulation only every k-th step updates.
            step = jnp.where((after == before) | (after % k != 0), -1, after // k)
            capture._trace_row(
                out,
                record,
                step.astype(jnp.int32),
                applied,
                tvars,
                trainable_variables,
                new_trainable,
                innermost,
                lambda variable: new_optimizer[position[id(variable)]],
            )
            return new_trainable, new_optimizer

        self._iteration_at = iteration_at
        self._last_iterations = None  # an earlier fit's state is gone (donated)
        # Read now: mid-epoch Keras purges the variables' values.
        self._state_shardings = (
            internals.jax_state_sharding_spec(self.model)
            if keras.distribution.distribution() is not None
            else None
        )
        self._wrap(optimizer, "stateless_apply", stateless_apply)

    def train_function(self, record: Record) -> Callable:
        """Keras' train loop over a step that also returns this step's rows."""
        model = self.model
        keras_step = model.train_step
        capture = self

        def train_step(state, data):
            capture._out = out = {}
            try:
                with capture._statistics_out(model) as taken:
                    logs, state = keras_step(state, data)
            finally:
                capture._out = None
            state, forward = taken(state)
            if "row" in out:
                gate, build = out["row"]
                out["row"] = (gate, build(forward=forward))
            return logs, state, out

        step = train_step
        if not model.run_eagerly and model.jit_compile:
            shardings = None
            if self._state_shardings is not None:
                # As Keras' own make_train_function: the state keeps its layout.
                shardings = (None, self._state_shardings, None)
            step = jax.jit(train_step, donate_argnums=0, out_shardings=shardings)
        self.steps[record] = step  # its compiled cost is inspectable (tests)

        def one_step(state, data):
            previous, capture.record = capture.record, record  # read while tracing
            try:
                logs, state, out = step(state, data)
            finally:
                capture.record = previous
            if "row" in out:
                capture._rows.append(out["row"])
            if "hist" in out:
                capture._hists.append(out["hist"])
            capture._last_iterations = state[2][capture._iteration_at]
            return logs, state

        return internals.jax_make_function(model, one_step)

    @contextlib.contextmanager
    def _statistics_out(self, model) -> Iterator[Callable]:
        """Carries the probe's forward statistics out of Keras' differentiated forward.

        They are computed inside ``jax.value_and_grad``, where a traced value
        cannot escape except as an output: ``compute_loss_and_updates`` is
        shadowed to append them to the non-trainable variables it returns
        (auxiliary, not differentiated), and the function yielded takes them
        back off the step's state: ``state -> (state, forward sections)``.
        """
        probe = self.probe
        count = probe.section_count() if probe is not None else 0
        if not count or not self.record.norms:
            yield lambda state: (state, [])
            return
        compute = model.compute_loss_and_updates

        def compute_loss_and_updates(*args, **kwargs):
            loss, (unscaled, y_pred, non_trainable, metrics) = compute(*args, **kwargs)
            return loss, (unscaled, y_pred, [*non_trainable, *probe.take()], metrics)

        def taken(state):
            trainable, non_trainable, optimizer, metrics = state
            kept, sections = list(non_trainable[:-count]), list(non_trainable[-count:])
            return (trainable, kept, optimizer, metrics), sections

        undo = shadow(model, "compute_loss_and_updates", compute_loss_and_updates)
        try:
            yield taken
        finally:
            undo()

    def plain_function(self, keras_function: Callable) -> Callable:
        capture = self

        def train_function(state, iterator):
            logs, state = keras_function(state, iterator)
            capture._last_iterations = state[2][capture._iteration_at]
            return logs, state

        return train_function

    # -- traced side ----------------------------------------------------------------
    def _gate(self, step, freq: int):
        """``step`` where it is recorded, else -1 (only when gating in the step)."""
        if freq == 1 or not self.gate_in_graph:
            return step
        return jnp.where(jnp.mod(step - 1, freq) == 0, step, -1)

    def _trace_row(
        self, out, record, step, grads, tvars, weights, new_weights, innermost, optimizer_value
    ):
        """The step's row, built once the forward sections are out (``out["row"]``).

        ``optimizer_value(variable)``: an optimizer variable's value after this update.
        """
        known, idx, other = self.pairs(grads, tvars)
        if not known and not other:
            return
        layout = self.layout
        if record.norms:
            sums = squared_sums(known + other)
            reductions = {}
            if layout.count_nonfinite:
                reductions["nonfinite"] = _nonfinite(known + other)
            if layout.has("weights"):
                position = {id(v): i for i, v in enumerate(tvars)}
                at = [position[id(v)] for v in self.variables]
                before = [weights[i] for i in at]
                reductions["weights"] = squared_sums(before)
                if layout.has("updates"):
                    deltas = [new_weights[i] - w for i, w in zip(at, before, strict=True)]
                    reductions["updates"] = squared_sums(deltas)
                    if layout.spectral:
                        reductions["spectral"] = self.spectral_sizes(deltas)
            if layout.has("eps_small"):
                reductions["eps_small"] = self.epsilon_counts(innermost, optimizer_value)
            if layout.log_clipped:
                # AGC's limits from this step's weights, before the update.
                order = self.applied_positions(grads, tvars)
                clipped = clip_as_applied(
                    innermost, known + other, [tvars[p] for p in order], [weights[p] for p in order]
                )
                reductions["clipped"] = squared_sums(clipped)
            # Built once the step's forward statistics are out (see train_function);
            # the step is set on the host from the exact integer step.
            build = functools.partial(
                build_row,
                layout,
                _ROW_OPS,
                group_of=self.layer_of,
                grouped=idx,
                sums=sums,
                **reductions,
            )
            out["row"] = (self._gate(step, self.update_freq), build)
        if record.histograms:
            per_group_grads: list[list] = [[] for _ in self.groups]
            for g, i in zip(known, idx, strict=True):
                per_group_grads[self.layer_of[i]].append(g)
            # A group without gradients gets no histogram (step EMPTY, as on TensorFlow).
            self._hist_present = np.asarray([bool(gs) for gs in per_group_grads])
            empty = jnp.zeros(2 + self.histogram_bins, jnp.float32)
            rows = [histogram(gs, self.histogram_bins) if gs else empty for gs in per_group_grads]
            out["hist"] = (self._gate(step, self.histogram_freq), jnp.stack(rows))

    # -- reading --------------------------------------------------------------------
    def _fetch(self, pairs: list) -> tuple[np.ndarray, np.ndarray]:
        steps, values = zip(*jax.device_get(pairs), strict=True)
        return np.asarray(steps), np.stack(values)

    def raw_iterations(self) -> int:
        # From the last state a train function returned (alive until the next
        # call donates it): Keras purges the variables' values mid-epoch, and
        # reading them through the callback's ``model`` would sync them all.
        if self._last_iterations is not None:
            return int(self._last_iterations)
        return int(raw_iterations(innermost_optimizer(self.model.optimizer)).numpy())

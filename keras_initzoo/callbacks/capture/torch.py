"""PyTorch side of GradientNormLogger: reduce the applied gradients on the device, eagerly.

Keras' PyTorch trainer runs the train step eagerly and calls ``apply`` of the
optimizer (the inner one, with unscaled gradients, under a
``LossScaleOptimizer``), so the wrapper around ``apply`` runs every step and
decides there whether to record. A recorded step costs a handful of kernels:
one ``torch._foreach_norm`` over all gradients (one batched kernel on CUDA),
one ``index_add_`` into the groups, one ``cat``. The row stays on the device
until :meth:`TorchCapture.read` moves all waiting rows in one ``.cpu()``.

Steps are counted on the host: every call of ``apply`` advances the optimizer's
step count by one (with gradient accumulation, every ``k``-th applies the
update), and a step the loss scaler skips never calls it, so the host count
is the iteration count without reading the device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from keras_initzoo import _keras_internals as internals
from keras_initzoo.callbacks.capture.base import (
    NOTHING,
    QueuedCapture,
    Record,
    accumulation,
    applied_gradients,
    histogram,
    innermost_optimizer,
    is_due,
    raw_iterations,
)
from keras_initzoo.callbacks.rows import build_row

_HALF = (torch.float16, torch.bfloat16)


def _tensor(x) -> torch.Tensor:
    return getattr(x, "value", x).detach()


def squared_sums(tensors: Sequence) -> torch.Tensor:
    """``sum(t**2)`` of each tensor as one float64 vector, from one batched norm kernel.

    Half-precision tensors are reduced in float32 (a float16 norm overflows at 65504).
    """
    tensors = [t.float() if t.dtype in _HALF else t for t in tensors]
    return torch.stack(internals.torch_foreach_norm(tensors)).double().square()


class _TorchRowOps:
    """:class:`~keras_initzoo.callbacks.rows.RowOps` in eager torch, float64, on one device.

    Index vectors are moved to the device once, then reused (a recorded step
    makes no host-to-device copy).
    """

    def __init__(self, device) -> None:
        self.device = device
        self._indices: dict[tuple, torch.Tensor] = {}

    def _index(self, positions) -> torch.Tensor:
        key = tuple(positions)
        index = self._indices.get(key)
        if index is None:
            index = self._indices[key] = torch.as_tensor(key, dtype=torch.long, device=self.device)
        return index

    def scalar(self, value) -> torch.Tensor:
        return torch.as_tensor(value, dtype=torch.float64, device=self.device).reshape(1)

    def total(self, values) -> torch.Tensor:
        return values.sum()[None]

    def segment_sum(self, values, segments, n: int) -> torch.Tensor:
        out = self.zeros(n)
        return out.index_add_(0, self._index(segments), values[: len(segments)].double())

    def scatter(self, values, positions, n: int) -> torch.Tensor:
        out = self.zeros(n)
        return out.index_put_((self._index(positions),), values[: len(positions)].double())

    def zeros(self, n: int) -> torch.Tensor:
        return torch.zeros(n, dtype=torch.float64, device=self.device)

    def concat(self, parts) -> torch.Tensor:
        return torch.cat([p.double() for p in parts])


class TorchCapture(QueuedCapture):
    """Rows computed eagerly on the device in ``apply``, kept there until read.

    Args:
        model: the model whose train step records (see :class:`Capture`).
        options: what to record, the logger's checked options.
        **settings: :class:`Capture`'s keyword arguments: ``rows``, ``gate_in_graph``.
    """

    probe_per_call = True  # eager: routed layer calls would cost every step

    def __init__(self, model, options, **settings) -> None:
        super().__init__(model, options, **settings)
        self._row_ops: dict = {}  # device -> its _TorchRowOps
        self._step = 0

    def install(self, optimizer) -> None:
        """Wrap ``apply`` of the optimizer that applies the (unscaled) gradients."""
        target = innermost_optimizer(optimizer)
        inner = target.apply
        capture = self

        def apply(grads, trainable_variables=None):
            capture._step += 1  # train steps, micro-batches included
            record = capture.record
            k = accumulation(target)
            # only a step that updates the weights is recorded (every k-th with accumulation)
            if not capture.active or record == NOTHING or capture._step % k:
                return inner(grads, trainable_variables)
            grads = list(grads)
            tvars = list(trainable_variables or internals.optimizer_trainable_variables(target))
            if not capture.build():
                return inner(grads, trainable_variables)
            step = capture._step // k  # this update's iteration count
            norms = record.norms and (
                not capture.gate_in_graph or is_due(step, capture.update_freq)
            )
            hists = record.histograms and (
                not capture.gate_in_graph or is_due(step, capture.histogram_freq)
            )
            # Weight norms are of the weights before the update, which is in place; so are
            # the accumulated gradients, which the update resets.
            weights = capture._weights() if norms and capture.layout.has("weights") else None
            applied = applied_gradients(target, grads, tvars, _tensor) if norms or hists else grads
            result = inner(grads, trainable_variables)
            if norms or hists:
                capture._record(step, norms, hists, target, applied, tvars, weights)
            return result

        # The count before the next step: one read of the device per fit.
        self._step = int(raw_iterations(target).numpy())
        self._wrap(target, "apply", apply)

    def train_function(self, record: Record) -> Callable:
        """A fresh Keras train function (eager: nothing traced) that records ``record``."""
        model = self.model
        model.make_train_function(force=True)
        keras_function = model.train_function
        capture = self

        def train_function(*args):
            previous, capture.record = capture.record, record
            probe = capture.probe
            if probe is not None:
                probe.install()
            try:
                return keras_function(*args)
            finally:
                capture.record = previous
                if probe is not None:
                    probe.uninstall()

        return train_function

    # -- device side ----------------------------------------------------------------
    def _weights(self) -> tuple[torch.Tensor, list | None]:
        """Each logged variable's squared weight norm now, and copies of the weights
        for update ratios."""
        weights = [_tensor(v) for v in self.variables]
        copies = [w.clone() for w in weights] if self.layout.has("updates") else None
        return squared_sums(weights), copies

    def _record(self, step, norms, hists, target, grads, tvars, weights) -> None:
        known, idx, other = self.pairs(grads, tvars)
        if not known and not other:
            return
        known = [_tensor(g) for g in known]
        other = [_tensor(g) for g in other]
        if norms:
            self._rows.append((step, self._norm_row(target, known, idx, other, weights)))
        if hists:
            per_group: list[list] = [[] for _ in self.groups]
            for g, i in zip(known, idx, strict=True):
                per_group[self.layer_of[i]].append(g)
            self._hist_present = np.asarray([bool(gs) for gs in per_group])
            empty = torch.zeros(2 + self.histogram_bins, device=known[0].device)
            rows = [histogram(gs, self.histogram_bins) if gs else empty for gs in per_group]
            self._hists.append((step, torch.stack(rows)))

    def _norm_row(self, target, known, idx, other, weights) -> torch.Tensor:
        layout = self.layout
        grads = known + other
        sums = squared_sums(grads)
        scale = getattr(target, "loss_scale_factor", None)
        if scale:
            sums = sums / float(scale) ** 2
        reductions = {}
        if layout.count_nonfinite:
            reductions["nonfinite"] = sum((~torch.isfinite(g)).sum() for g in grads)
        if weights is not None:
            reductions["weights"], before = weights
            if layout.has("updates"):
                deltas = [_tensor(v) - w for v, w in zip(self.variables, before, strict=True)]
                reductions["updates"] = squared_sums(deltas)
                if layout.spectral:
                    reductions["spectral"] = self.spectral_sizes(deltas)
        if layout.has("eps_small"):  # after the update: the second moment it divided by
            reductions["eps_small"] = self.epsilon_counts(target, _tensor)
        if layout.log_clipped:
            unscaled = grads if not scale else [g / scale for g in grads]
            clipped = internals.clip_gradients(target, unscaled)
            reductions["clipped"] = squared_sums([_tensor(g) for g in clipped])
        ops = self._row_ops.get(sums.device)
        if ops is None:
            ops = self._row_ops[sums.device] = _TorchRowOps(sums.device)
        # The step is set on the host.
        forward = self.forward_sections()
        return build_row(
            layout,
            ops,
            group_of=self.layer_of,
            grouped=idx,
            sums=sums,
            forward=forward,
            **reductions,
        )

    # -- reading --------------------------------------------------------------------
    def _fetch(self, pairs: list) -> tuple[np.ndarray, np.ndarray]:
        steps, values = zip(*pairs, strict=True)  # steps are host integers
        return np.asarray(steps), torch.stack(values).cpu().numpy()

    def raw_iterations(self) -> int:
        if self._wrapped is not None:
            return self._step
        return int(raw_iterations(innermost_optimizer(self.model.optimizer)).numpy())

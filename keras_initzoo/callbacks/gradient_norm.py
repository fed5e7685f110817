"""GradientNormLogger: per-layer gradient L2 norms of the applied gradients, to TensorBoard."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo._warnings import warn as warn_in_user_code
from keras_initzoo.callbacks import spikes
from keras_initzoo.callbacks.capture import NOTHING, capture_for
from keras_initzoo.callbacks.options import LoggerOptions, option_names
from keras_initzoo.callbacks.traced import TracedVariants
from keras_initzoo.callbacks.views import ACTIVATION_DEPTH_TAG, DepthHistory, layout_summary
from keras_initzoo.callbacks.writer import (
    EventWriter,
    ScalarEncoder,
    histogram_summary,
    processes,
    text_summary,
)

# Seconds between depth heatmaps drawn at epoch ends (the last one is drawn at train end).
IMAGE_INTERVAL_S = 30.0


class GradientNormLogger(keras.callbacks.Callback):
    """Log the L2 norm of the gradients the optimizer applies, per layer, to TensorBoard.

    No extra forward or backward pass: the norms are reduced on the device
    inside the real train step, on each Keras backend — TensorFlow: the
    optimizer's ``apply`` is wrapped before the train function is traced;
    JAX: ``stateless_apply`` is wrapped while a jitted copy of Keras' own
    ``train_step`` traces, and the row leaves the compiled step as one more
    output; PyTorch: the eager ``apply`` is wrapped and the norms come from
    one batched ``torch._foreach_norm``. Rows wait on the device and are read
    to the host in one transfer every 32 logged steps or 2 seconds, at each
    epoch's end, at the end of training and when a train step raises, never
    once per variable or per step. An exception raised elsewhere (another
    callback; on PyTorch also the input pipeline, which Keras runs outside
    the train function) leaves the last rows on the device; they are logged
    when the callback is used again.

    Steps that log nothing cost nothing: with one step per train-function call
    (the default ``steps_per_execution=1``) the callback keeps two traced train
    functions, the plain one and one that records, and calls the recording one
    only for logged steps. Both are traced in the fit's first two steps (the
    first step of a fit is recorded for that, and logged only if due); a later
    ``fit`` of the same compiled model with the same callback reuses them, as
    Keras reuses its own (a new ``compile`` traces afresh; the callback holds
    them until then, or until it is dropped). With
    ``steps_per_execution > 1`` one traced function gates itself on the step
    count; its gate waits for all gradients of a step, which costs a few per
    cent of a small model's step even when nothing is logged.

    What is logged at step ``t`` (the optimizer's iteration count after the
    update, so the first step is 1, like ``keras.callbacks.TensorBoard``):

    * ``grad_norm/<layer>``: ``sqrt(sum over the layer's trainable variables v of
      sum(g_v ** 2))`` — one norm for all of the layer's weights together;
    * ``grad_norm/global``: the same over all trainable variables;
    * with ``count_nonfinite=True``: ``grad_nonfinite/count``, how many gradient
      entries are NaN or inf (counted only in tensors whose norm is not finite);
    * with ``per_variable=True``: ``grad_norm_per_variable/<variable path>``;
    * with ``weight_norms=True``: ``weight_norm/<layer>``, the layer's weight norm
      before the update;
    * with ``update_ratio=True``: ``update_ratio/<layer>`` =
      ``||w_after - w_before|| / ||w_before||`` (also logs the weight norms);
      costs one copy of the weights, made on logged steps only;
    * with ``histogram_freq=k``: ``grad_hist/<layer>`` histograms every ``k`` steps.

    Steps ``1, 1 + update_freq, 1 + 2 * update_freq, ...`` are logged, so the
    first step, the one that shows the initialization, always is. With the
    optimizer's ``gradient_accumulation_steps=k`` a step is an update: the
    logged gradient is the one applied, the mean of the ``k`` micro-batches'
    gradients, once per update.

    * with ``activation_stats=True``, each group's output in the same step
      (:mod:`~keras_initzoo.callbacks.capture.forward`): ``act_rms/<group>``,
      ``act_mean/<group>``, ``act_dead/<group>`` (the fraction of units zero on
      the whole batch), ``act_saturated/<group>`` (saturating outputs only:
      tanh, sigmoid, softsign) and the heatmap ``act_rms_by_depth``;
    * with ``attention_logits=True``, for each attention layer of a family in
      :data:`~keras_initzoo.callbacks.capture.forward.ATTENTION_FAMILIES`
      (``MultiHeadAttention``, ``GroupedQueryAttention``, KerasHub's Llama,
      Gemma, Mistral, Qwen, Phi-3 and kin, grouped-query attention included)
      in the same step: ``attn_logit_max/<layer>``, its largest
      pre-softmax logit, and ``attn_entropy/<layer>``, the attention weights'
      mean entropy in nats (the instability of Wortsman et al. 2024: logits
      that grow while the entropy collapses);
    * with ``output_logits=True``: ``logits/log_z``, the mean log-sum-exp of the
      model's output logits (what z-loss penalizes), and ``logits/max_abs``;
    * with ``optimizer_stats=True``: ``update_rms/<group>``, the RMS of the
      update the optimizer applied to the group's entries, and for Adam and
      AdamW (Keras' and kiz.mup's) ``adam_eps_share/<group>``, the share of its
      entries whose ``sqrt(v) < epsilon`` after the update: where epsilon, not
      the gradient, sets the step (Keras divides by ``sqrt(v) + epsilon``;
      kiz.mup's epsilon multiplier included);
    * with ``spectral_updates=True``: ``update_spectral/<kernel path>``,
      ``||dW||_2 / sqrt(fan_out / fan_in)`` of each kernel's update, the
      quantity the spectral condition for feature learning (Yang, Simon &
      Bernstein 2023) keeps of order one, from 8 Golub-Kahan-Lanczos steps on
      logged steps (``capture.base.spectral_norms``, within 0.1 %), with the walk's true fans;
    * with ``detect_spikes=True``: the text tag ``spikes``, one entry per step where
      the global or a group's gradient norm (or, with ``activation_stats``, a
      group's output RMS) jumps past its running median, naming the group the
      rise started in, and a warning (:mod:`~keras_initzoo.callbacks.spikes` has
      the rule); ``stop_on_spike=True`` also stops training there;
    * with ``log_clipped=True``: ``grad_norm_clipped/<group>`` and
      ``grad_norm_clipped/global``, the same gradients after the optimizer's
      ``clipnorm``, ``global_clipnorm`` or ``clipvalue``, from the same step.

    Groups: by default one per layer that owns trainable variables, named by
    its path inside the model (``block_3/mlp/dense_1``), also inside custom
    layers that hold sublayers. ``group_by="block"`` makes each repeated block
    one group wherever it sits (``transformer_layer_3``, MobileNetV2's
    ``block_6``, a wrapped backbone's ``gpt2_backbone/transformer_layer_2``;
    the rule: :func:`~keras_initzoo.callbacks.groups.resolve_layer_groups`); a regex
    names the group by its first capture group; a callable maps a layer path
    to a group name. Groups are in forward order wherever order shows.

    The depth view: the image ``grad_norm_by_depth`` (TensorBoard's Images tab)
    is a heatmap of log10 gradient norm, groups top (first layer) to bottom,
    logged steps left to right, drawn from the rows already read at the end of
    training and at an epoch's end once :data:`IMAGE_INTERVAL_S` seconds have
    passed since the last drawing (an image per epoch would cost a short fit
    of 10-step epochs a few per cent). The custom-scalars layout puts ``grad_norm/global`` on a
    chart of its own and the groups, in depth order, a few to a chart.

    Which gradients: those handed to the optimizer that updates the weights —
    unscaled under mixed precision (the ``LossScaleOptimizer``'s inner
    optimizer is wrapped; steps it skips for non-finite gradients are not
    logged), divided by a static ``loss_scale_factor``, and summed over the
    replicas of a ``tf.distribute`` strategy (single-host strategies such as
    ``MirroredStrategy``), and of the global batch under JAX's
    ``keras.distribution.DataParallel``. They are logged **before** gradient clipping
    (``clipnorm``, ``global_clipnorm``, ``clipvalue``) and weight decay, so a
    clipped run shows how large the raw gradients were. Layers are those of
    nested and functional sub-models, each shared layer once, frozen layers
    not at all.

    Several processes (JAX, ``keras.distribution.initialize``): process 0
    writes the one set of events; the others make no directory or file and do
    no encoding, heatmap or histogram work. They still run the same recording
    train step (it is one program across the processes) and drop its rows
    unread; with ``stop_on_nonfinite`` every process reads the rows' global
    norm, so that all of them stop at the same step.

    Example::

        import keras_initzoo as kiz

        cb = kiz.GradientNormLogger(log_dir="runs/he", update_freq=1)
        model.fit(x, y, epochs=3, callbacks=[cb])
        # tensorboard --logdir runs   -> Custom Scalars: one line per layer

    Args:
        log_dir: directory for the event file, a ``str`` or ``os.PathLike``;
            created if missing, must be writable (checked here, not
            mid-training). Default ``"logs/grad_norm"``, relative to the
            working directory: ``tensorboard --logdir logs`` shows it.
        update_freq: log every this many optimizer steps, an integer >= 1, or
            ``"batch"`` (the same as 1). Default 1: every step.
        per_variable: also log each variable's gradient norm (default False).
            This and the arguments below are keyword only.
        weight_norms: also log each layer's weight norm (default False).
        update_ratio: also log each layer's update-to-weight norm ratio
            (default False; True turns ``weight_norms`` on).
        histogram_freq: log gradient histograms every this many steps, an
            integer >= 0 (default 0: never).
        histogram_bins: buckets per histogram, an integer in ``[1, 10000]``
            (default 30).
        count_nonfinite: also log how many gradient entries are NaN or inf
            (default False: a non-finite gradient already shows as a NaN or inf
            norm and a warning naming the step and layers, and the count costs
            about 1–3 % of a small model's step even when there is nothing to
            count).
        group_by (str | re.Pattern | Callable[[str], str]): how layers form
            the logged groups: ``"layer"`` (default: one group per layer with
            trainable variables), ``"block"`` (each repeated block one group),
            a regex (a ``str`` or compiled pattern: its first capture group
            names the group) or a callable from a layer path to a group name
            (see above).
        log_clipped: also log the norms after the optimizer's clipping
            (default False).
        stop_on_nonfinite: stop training (default False; True sets
            ``model.stop_training = True``, with a warning naming the step and
            layers) when a logged step has a non-finite gradient norm (NaN or
            inf entries, or a norm beyond the accumulator's range). Rows are
            then read after every logged step, and training stops right after
            the train-function call that ran the bad step.
            Between logged steps the step's loss is read to the host instead (a
            non-finite loss stops training after that step; a non-finite
            gradient under a finite loss shows at the next logged step).
        on_write_error: what a failed event write (a full disk, a file-size
            limit, a read-only or vanished file) does. Never an exception out
            of the train step, which on JAX would lose the model's state:
            ``"warn"`` (default) warns once, naming the file, the callback and
            the OS error, stops logging and lets training go on; ``"raise"``
            stops training after that step (``model.stop_training``) and
            raises the error, as an ``OSError`` naming the file, from
            ``on_train_end``, once the weights are back in the model. A
            ``log_dir`` removed mid-fit is made again, with a new event file
            and one warning (the rows written to the removed file are lost).
        activation_stats: also log each group's output statistics (see above),
            computed in the forward pass of the logged steps (default False).
        attention_logits: also log each attention layer's largest logit and
            entropy (see above), computed in the forward pass of the logged
            steps (default False).
        output_logits: also log the output logits' mean log Z and largest
            magnitude (see above); the model must output logits, not
            probabilities (default False).
        optimizer_stats: also log each group's update RMS and, for Adam, the share
            of entries epsilon dominates (see above; default False).
        spectral_updates: also log each kernel's spectral update size (see
            above; default False).
        detect_spikes: flag spikes in the logged norms (see above), on the host,
            from the rows already read (default False).
        stop_on_spike: stop training (``model.stop_training``) at a flagged
            spike; turns ``detect_spikes`` on (default False).

    Raises:
        ValueError: for a bad argument (naming it and what is allowed), and in
            ``on_train_begin`` for a model without an optimizer.
        RuntimeError: in ``on_train_begin`` when Keras runs on a backend other
            than TensorFlow, JAX or PyTorch.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs/grad_norm",
        update_freq: int | str = 1,
        *,
        per_variable: bool = False,
        weight_norms: bool = False,
        update_ratio: bool = False,
        histogram_freq: int = 0,
        histogram_bins: int = 30,
        count_nonfinite: bool = False,
        stop_on_nonfinite: bool = False,
        group_by="layer",
        log_clipped: bool = False,
        on_write_error: str = "warn",
        activation_stats: bool = False,
        attention_logits: bool = False,
        output_logits: bool = False,
        optimizer_stats: bool = False,
        spectral_updates: bool = False,
        detect_spikes: bool = False,
        stop_on_spike: bool = False,
    ) -> None:
        super().__init__()
        self.options = LoggerOptions(
            log_dir=log_dir,
            update_freq=update_freq,
            per_variable=per_variable,
            weight_norms=weight_norms,
            update_ratio=update_ratio,
            histogram_freq=histogram_freq,
            histogram_bins=histogram_bins,
            count_nonfinite=count_nonfinite,
            stop_on_nonfinite=stop_on_nonfinite,
            group_by=group_by,
            log_clipped=log_clipped,
            on_write_error=on_write_error,
            activation_stats=activation_stats,
            attention_logits=attention_logits,
            output_logits=output_logits,
            optimizer_stats=optimizer_stats,
            spectral_updates=spectral_updates,
            detect_spikes=detect_spikes,
            stop_on_spike=stop_on_spike,
        )
        self._write_error: OSError | None = None  # the first failed write of this fit
        self._history: DepthHistory | None = None  # the logged group norms, for the heatmap
        self._act_history: DepthHistory | None = None  # the groups' output RMS, likewise
        self._spikes: spikes.SpikeState | None = None  # detect_spikes' running windows
        self._image_step = -1  # the step of the last heatmap written
        self._image_time = -math.inf  # and when (time.monotonic())
        self._variants = TracedVariants()
        self._writer: EventWriter | None = None
        self._encoder: ScalarEncoder | None = None
        self._hist_tags: list[str] = []
        self._last_logged = 0
        self._last_hist = 0
        self._iteration = 0  # train steps run before the next call (micro-batches included)
        self._pending = 0  # rows possibly recorded since the last read
        self._rows_per_call = 1
        self._read_at = 1
        self._last_read = 0.0
        self._warned_nonfinite = False
        self._failed_path = ""  # the file a failed write was for
        self._writes = True  # this process writes the events (process 0)
        self._single_process = True

    # -- setup ------------------------------------------------------------------------
    def on_train_begin(self, logs=None) -> None:
        model = self.model
        if getattr(model, "optimizer", None) is None:
            raise ValueError("GradientNormLogger needs a model compiled with an optimizer.")
        # Open the file now so even a short or failing run leaves the layout.
        index, count = processes()
        self._writes, self._single_process = index == 0, count == 1
        self._write_error = None
        if self._writes:
            with self._writing(before_training=True):
                self._open_writer()
        # fit() made Keras' train function before on_train_begin. It serves as the
        # variant that records nothing: traced without the capture (or, if new,
        # traced through the wrapper with nothing to record), and given back at
        # train end, so a later fit without this callback does not trace again.
        keras_function = model.train_function
        left_by = getattr(keras_function, "__self__", None)
        if isinstance(left_by, GradientNormLogger):  # a fit that raised left a logger's
            keras_function = left_by._variants.keras_function
        if self._capture is not None:
            # An earlier fit ended in an exception that skipped on_train_end:
            # log what it left on the device before going on.
            self._read_device()
            self._variants.keep(self.model)
        steps_per_call = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
        # One step per call: the host knows which calls log and runs the plain
        # train step in the others. Several: the traced steps gate themselves.
        gate_on_host = steps_per_call == 1
        options = self.options
        freqs = [options.update_freq] + ([options.histogram_freq] if options.histogram_freq else [])
        rows, self._rows_per_call = _ring_size(1 if gate_on_host else steps_per_call, freqs)
        # Reading when half the rows may be full leaves the other half as margin.
        self._read_at = self._rows_per_call if options.stop_on_nonfinite else rows // 2
        self._variants.start(
            model,
            keras_function,
            options.traced,
            gate_on_host,
            lambda: capture_for(model, options, rows=rows, gate_in_graph=not gate_on_host),
        )
        model.train_function = self._train_function
        self._encoder = None
        with self._writing(before_training=True):
            self._prepare_outputs()
        # One read per fit: steps continue across fit calls and initial_epoch resumes.
        step = self._capture.iterations()
        if self._writer is not None and step > 0:  # a resumed run replaces what a crashed
            # one left; not at step 0, where the START would purge events written before
            # training at steps of their own (the experiments' init_by_depth, by depth)
            with self._writing(before_training=True):
                self._writer.write_session_start(step + 1)
        self._iteration = self._capture.raw_iterations()  # train steps before the next call
        # Rows a kept buffer holds from an earlier fit are of earlier steps: not logged again.
        self._last_logged = step
        self._last_hist = step
        self._pending = 0
        self._variants.unlogged_step = -1
        self._last_read = time.monotonic()
        self._warned_nonfinite = False

    # -- per train-function call --------------------------------------------------------
    # Rows wait on the device and are read in batches: when half of the ring may be
    # full, when READ_SECONDS have passed since the last read and some row may be
    # new, at epoch and train end, and when a step raises. No batch hook is
    # overridden, which also lets Keras dispatch other callbacks' batch-end hooks
    # asynchronously.
    READ_SECONDS = 2.0

    def _keras_model(self):
        """The model, inside a fit: not ``self.model``, a property that on JAX copies the
        whole training state back into the variables on each read."""
        return internals.callback_model(self)

    def _train_function(self, *args):
        """Keras' train function, picking the traced variant that records what is due."""
        variants = self._variants
        if variants.capture is None:  # nothing to log (no trainable weights)
            return variants.function_for(NOTHING)[0](*args)
        options = self.options
        record = variants.due(self._iteration, options.update_freq, options.histogram_freq)
        variants.capture.record = record  # read while a variant traces
        function, made = variants.function_for(record)
        if made:  # making it may have set Keras' own as the model's train function
            self._keras_model().train_function = self._train_function
        try:
            outputs = function(*args)
        except BaseException:  # KeyboardInterrupt too: keep what finished steps computed
            self._read_device(resync=False)  # the failed step's state may be gone
            raise
        self._iteration += 1
        if variants.capture is not None and variants.capture.stale:
            variants.retrace_recording()  # traced before the capture was built
        if record == NOTHING and options.stop_on_nonfinite:
            self._stop_on_nonfinite_loss(outputs)
        if record != NOTHING:
            self._pending += self._rows_per_call
            # Several processes read at the same steps only (no timed reads): a read
            # re-synchronizes the step count, which picks the next call's program.
            if self._pending >= self._read_at or (
                self._writes
                and self._single_process
                and time.monotonic() - self._last_read >= self.READ_SECONDS
            ):
                self._read_device()
        return outputs

    def _stop_on_nonfinite_loss(self, outputs) -> None:
        """Between logged steps: the step's loss (Keras' running mean, so one NaN or inf
        stays) read to the host; non-finite stops training after this step."""
        logs = outputs[0] if isinstance(outputs, tuple) else outputs  # JAX: (logs, state)
        loss = logs.get("loss") if isinstance(logs, dict) else None
        if loss is None:
            return
        value = float(np.asarray(keras.ops.convert_to_numpy(loss)).reshape(-1)[0])
        if math.isfinite(value):
            return
        self._keras_model().stop_training = True
        step = self._iteration // self._capture.accumulation if self._capture else self._iteration
        warn_in_user_code(
            f"GradientNormLogger: a non-finite loss ({value}) by step {step}, a step that is "
            "not logged. Stopping training (stop_on_nonfinite=True)."
        )

    def _open_writer(self) -> None:
        if self._writer is None:
            self._writer = EventWriter(self.options.log_dir)

    def _prepare_outputs(self) -> None:
        """Tags, the depth history and the custom-scalars layout, once the groups are known.

        At train begin for a built model, else at the first read (a subclassed
        model builds in its first step). Only where events are written.
        """
        capture = self._capture
        if self._encoder is not None or capture is None or not capture.built or not self._writes:
            return
        layout = capture.layout
        self._encoder = ScalarEncoder(layout.tags())
        self._hist_tags = [f"grad_hist/{g.name}" for g in capture.groups]
        if self._history is None or self._history.groups != layout.groups:
            self._history = DepthHistory(layout.groups)
            self._act_history = (
                DepthHistory(layout.groups, ACTIVATION_DEPTH_TAG, "output RMS")
                if layout.activation_stats
                else None
            )
            step = capture.iterations()
            # Written at the current step: an earlier step would make TensorBoard
            # purge the newer points it already holds ("out of order" restart logic).
            self._writer.write_summary(step, layout_summary(layout))
            self._writer.flush()

    def _read_device(self, resync: bool = True) -> None:
        capture = self._capture
        self._pending = 0
        self._last_read = time.monotonic()
        if capture is None:
            return
        if not capture.built:
            # Keras calls no optimizer for a model without trainable weights.
            warn_in_user_code(
                "GradientNormLogger: the model has no trainable weights, so there are no "
                "gradients to log."
            )
            capture.uninstall()
            self._variants.drop_capture()
            return
        if self._writer is not None:
            with self._writing():
                self._reopen_if_removed()
                self._prepare_outputs()
                self._flush_rows()
                if self.options.histogram_freq:
                    self._flush_histograms()
                self._writer.flush()
        elif self.options.stop_on_nonfinite:
            self._stop_where_nonfinite()
        else:
            capture.discard()
        if resync:
            # Re-synchronize the host's step count: a step the loss scaler
            # skipped did not advance the optimizer.
            self._iteration = capture.raw_iterations()

    def _flush_rows(self) -> None:
        capture = self._capture
        data = capture.read()
        layout = capture.layout
        steps = data[:, layout.span("step").start]
        fresh = np.flatnonzero(
            (steps > self._last_logged) & (steps != self._variants.unlogged_step)
        )
        for r in fresh[np.argsort(steps[fresh])]:
            self._log_row(int(steps[r]), data[r], layout)
        if fresh.size:
            self._last_logged = int(steps[fresh].max())

    def _stop_where_nonfinite(self) -> None:
        """A process that writes nothing: stops where process 0 stops, on the same rows."""
        data = self._capture.read()
        self._capture.discard()
        layout = self._capture.layout
        steps = data[:, layout.span("step").start]
        fresh = (steps > self._last_logged) & (steps != self._variants.unlogged_step)
        if not np.isfinite(data[fresh, layout.span("global").start]).all():
            self._keras_model().stop_training = True
        if fresh.any():
            self._last_logged = int(steps[fresh].max())

    def _log_row(self, step: int, row: np.ndarray, layout) -> None:
        self._writer.write_bytes(self._encoder.encode(step, layout.values(row)))
        self._history.add(step, layout.group_norms(row))
        if self._act_history is not None:
            self._act_history.add(step, layout.group_norms(row, "act_sq"))
        if self.options.detect_spikes:
            self._watch_spikes(step, row, layout)
        if not math.isfinite(row[layout.span("global")][0]):
            self._report_nonfinite(step, row, layout)

    def _watch_spikes(self, step: int, row: np.ndarray, layout) -> None:
        """Adds the row to the running windows; a new spike gets a text event and a warning."""
        names = ("loss", "grad_norm/global", *(f"grad_norm/{g}" for g in layout.groups))
        parts = [
            row[layout.span("loss")],
            layout.group_norms(row, "global"),
            layout.group_norms(row),
        ]
        if layout.activation_stats:
            names += tuple(f"act_rms/{g}" for g in layout.groups)
            parts.append(layout.group_norms(row, "act_sq"))
        if self._spikes is None or self._spikes.names != names:
            self._spikes = spikes.SpikeState(names)
        found = [spikes.update(self._spikes, step, np.concatenate(parts), layout.groups)]
        if layout.attention:
            largest = row[layout.span("attn_max")]
            found += spikes.logit_growth(self._spikes, step, layout.attention, largest)
        for spike in found:
            if spike is not None:
                self._report_spike(step, spike)

    def _report_spike(self, step: int, spike) -> None:
        """The text event, the warning, and with ``stop_on_spike`` the stop."""
        self._writer.write_summary(step, text_summary("spikes", spike.markdown()))
        stopping = self.options.stop_on_spike
        if stopping:
            self._keras_model().stop_training = True
        warn_in_user_code(
            f"GradientNormLogger: {spike.markdown().replace('**', '')}"
            + (" Stopping training (stop_on_spike=True)." if stopping else "")
        )

    def _report_nonfinite(self, step: int, row: np.ndarray, layout) -> None:
        part = layout.decode(row)
        bad = [
            g for g, s in zip(layout.groups, part["groups"], strict=True) if not math.isfinite(s)
        ]
        where = f"layers: {', '.join(bad) or 'unattributed variables'}"
        if layout.count_nonfinite:
            what = f"{int(part['nonfinite'][0])} non-finite gradient values"
            logged = "Logged as grad_nonfinite/count."
        else:
            what = "a non-finite gradient norm"
            where = f"NaN or inf gradient values, or a norm beyond float range; {where}"
            logged = "Logged as a NaN or inf grad_norm."
        msg = f"GradientNormLogger: {what} at step {step} ({where})."
        if self.options.stop_on_nonfinite:
            self._keras_model().stop_training = True
            warn_in_user_code(msg + " Stopping training (stop_on_nonfinite=True).")
        elif not self._warned_nonfinite:
            self._warned_nonfinite = True
            warn_in_user_code(f"{msg} {logged}")

    def _flush_histograms(self) -> None:
        data = self._capture.read_histograms()
        steps = data[:, 0, 0]
        fresh = np.flatnonzero(steps > self._last_hist)
        for r in fresh[np.argsort(steps[fresh])]:
            keep = [i for i in range(data.shape[1]) if data[r, i, 0] >= 0]
            summary = histogram_summary(
                [self._hist_tags[i] for i in keep],
                data[r, keep],
                "Gradient values applied by the optimizer (before clipping).",
            )
            self._writer.write_summary(int(steps[r]), summary)
        if fresh.size:
            self._last_hist = int(steps[fresh].max())

    # -- flushing and teardown ----------------------------------------------------------
    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._read_device()
        if time.monotonic() - self._image_time >= IMAGE_INTERVAL_S:
            self._write_depth_image()

    def _write_depth_image(self) -> None:
        """The ``grad_norm_by_depth`` heatmap (and ``act_rms_by_depth``), from the rows
        already on the host."""
        history = self._history
        if self._writer is None or history is None or not len(history):
            return
        if history.last_step != self._image_step:  # train end right after an epoch end
            self._image_step, self._image_time = history.last_step, time.monotonic()
            with self._writing():
                for drawn in (history, self._act_history):
                    if drawn is not None:
                        self._writer.write_summary(drawn.last_step, drawn.image_summary())
                self._writer.flush()

    def on_train_end(self, logs=None) -> None:
        self._read_device()
        self._write_depth_image()
        # Give Keras its own train function back: a later fit without this
        # callback runs exactly what it would have run without it.
        if self.model.train_function == self._train_function:
            self.model.train_function = self._variants.keras_function
        self._variants.keep(self.model)
        if self._writer is not None:
            with self._writing():
                self._writer.close()
            self._writer = None
        error, self._write_error = self._write_error, None
        if error is not None and self.options.on_write_error == "raise":
            raise OSError(error.errno, _write_message(error, self._failed_path)) from error

    # -- failed writes ------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self, before_training: bool = False) -> Iterator[None]:
        """Where events are written: an ``OSError`` never leaves here (see ``on_write_error``).

        Raised out of the train function it would lose a JAX model's state,
        whose buffers the step has already consumed.
        """
        try:
            yield
        except OSError as error:
            self._write_failed(error)
            if before_training and self.options.on_write_error == "raise":
                raise OSError(error.errno, _write_message(error, self._failed_path)) from error

    def _write_failed(self, error: OSError) -> None:
        writer, self._writer = self._writer, None
        self._failed_path = writer.path if writer is not None else self.options.log_dir
        if writer is not None:
            with contextlib.suppress(OSError):  # closing flushes what failed to flush
                writer.close()
        if self._write_error is not None:
            return
        self._write_error = error
        message = _write_message(error, self._failed_path)
        if self.options.on_write_error == "raise":
            if self._keras_model() is not None:
                self._keras_model().stop_training = True
        else:
            warn_in_user_code(
                f"{message} Logging stops; training goes on (on_write_error='warn'; "
                "'raise' stops the fit instead)."
            )

    def _reopen_if_removed(self) -> None:
        """A ``log_dir`` removed mid-fit is made again, with a new event file and layout."""
        if "://" in self.options.log_dir or os.path.isdir(self.options.log_dir):
            return
        removed = self._writer.path
        with contextlib.suppress(OSError):
            self._writer.close()
        os.makedirs(self.options.log_dir, exist_ok=True)
        self._writer = EventWriter(self.options.log_dir)
        self._encoder = None  # the layout is written again into the new file
        self._history = None
        warn_in_user_code(
            f"GradientNormLogger: log_dir {self.options.log_dir!r} was removed during training; "
            f"made it again with a new event file. The rows written to {removed} are lost."
        )

    @property
    def _capture(self):
        """The capture of the current fit (None outside a fit, or with nothing to log)."""
        return self._variants.capture


def _option(name: str) -> property:
    return property(
        lambda self: getattr(self.options, name),
        doc=f"The ``{name}`` option as checked (read-only; see :class:`LoggerOptions`).",
    )


# Each option readable on the callback too (``logger.update_freq``), from the one record.
for _name in option_names():
    setattr(GradientNormLogger, _name, _option(_name))


def _write_message(error: OSError, path: str) -> str:
    reason = f"{type(error).__name__}: {error.strerror or error}"
    return f"GradientNormLogger could not write its TensorBoard events to {path} ({reason})."


def _ring_size(steps_per_call: int, freqs: list[int]) -> tuple[int, int]:
    """Ring-buffer rows, and the most rows one train-function call can record.

    A call of ``steps_per_call`` steps records at most ``ceil(steps_per_call / f)``
    of them for each frequency ``f``; the ring keeps four calls' worth, at least 64.
    """
    per_call = max(-(-steps_per_call // f) for f in freqs)
    return max(64, 4 * per_call), per_call

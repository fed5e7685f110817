"""Which traced train function runs each step, and which are kept between fits.

With one step per train-function call the callback keeps one traced variant
of the train function per :class:`Record` (what its steps record) and calls
the one that is due, so a step that logs nothing runs the plain train step.
With several steps per call one variant gates itself in the graph. A later
fit of the same compiled model with the same traced options reuses the
variants, as Keras reuses its own train function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from keras_initzoo.callbacks.capture import NOTHING, Capture, Record, is_due


class _Kept(NamedTuple):
    """What a finished fit traced, kept for the next fit of the same compiled model."""

    model: object
    optimizer: object
    keras_function: object
    key: tuple
    capture: Capture
    functions: dict


class TracedVariants:
    """The train-function variants of the current fit, and those kept from the last one.

    ``key`` is everything the traced steps depend on besides the model: the
    options' traced part and where steps are gated.
    """

    def __init__(self) -> None:
        self.capture: Capture | None = None
        self.keras_function = None  # Keras' own train function, given back at train end
        self.gate_on_host = True
        self.unlogged_step = -1  # a step recorded only to trace its variant early
        self._functions: dict[Record, Callable] = {}
        self._kept: _Kept | None = None
        self._key: tuple = ()

    def start(
        self,
        model,
        keras_function,
        key: tuple,
        gate_on_host: bool,
        new_capture: Callable[[], Capture],
    ) -> Capture:
        """The capture of this fit, installed: the last fit's if it still serves, else new.

        Args:
            model: the model being fitted.
            keras_function: Keras' own train function of this fit (None if not made).
            key: the options the traced steps depend on.
            gate_on_host: whether the host picks each call's variant.
            new_capture: makes a new capture, if the last fit's does not serve.

        Returns:
            The installed capture.
        """
        kept, self._kept = self._kept, None
        self.gate_on_host, self._key = gate_on_host, (gate_on_host, *key)
        if (
            kept is not None
            and keras_function is not None
            and kept.keras_function is keras_function  # ``compile`` makes a new one
            and kept.model is model
            and kept.optimizer is model.optimizer
            and kept.key == self._key
        ):
            self.capture, self._functions = kept.capture, kept.functions
        else:
            self.capture = new_capture()
            # Built now if the model is; a subclassed model builds in the first trace.
            self.capture.build()
            # Recording variants are traced afresh: a function traced earlier
            # would not see the wrapped apply.
            self._functions = (
                {}
                if keras_function is None
                else {NOTHING: self.capture.plain_function(keras_function)}
            )
        self.capture.install(model.optimizer)
        self.keras_function = keras_function
        return self.capture

    def due(self, iteration: int, update_freq: int, histogram_freq: int) -> Record:
        """What the call running train step ``iteration + 1`` records.

        Gated in the graph, every call records what the capture records. On the
        host: with gradient accumulation only every k-th step updates, as
        update ``step``; updates 1, 1 + freq, ... are logged.

        Args:
            iteration: the train steps run so far, micro-batches included.
            update_freq: log every this many updates.
            histogram_freq: histograms every this many updates (0: never).

        Returns:
            The :class:`Record` (what the call records).
        """
        capture = self.capture
        if not self.gate_on_host:
            return capture.record
        step, micro = divmod(iteration + 1, capture.accumulation)
        updates = micro == 0
        due = Record(
            updates and is_due(step, update_freq),
            updates and bool(histogram_freq) and is_due(step, histogram_freq),
        )
        if due == NOTHING and Record(True, False) not in self._functions:
            # First call of the fit: record anyway, so that both variants are traced
            # in the fit's first two steps rather than one of them at the first
            # logged step, mid-training. The row is not logged.
            self.unlogged_step = step if updates else -1
            return Record(True, False)
        return due

    def function_for(self, record: Record) -> tuple[Callable, bool]:
        """The variant that records ``record``, and whether it was made just now."""
        function = self._functions.get(record)
        if function is not None:
            return function, False
        function = self._functions[record] = self.capture.train_function(record)
        return function, True

    def retrace_recording(self) -> None:
        """Drop the recording variants, traced before the capture was built (a
        subclassed model builds in its first step), so the next recording call
        traces them again, with everything the built capture records."""
        self._functions = {r: f for r, f in self._functions.items() if r == NOTHING}
        self.capture.stale = False

    def keep(self, model) -> None:
        """Unwrap the optimizer, keeping the variants for this callback's next fit.

        They hold their graphs' memory until then, or until the callback is dropped.
        """
        capture = self.capture
        if capture is not None:
            capture.uninstall()
            self._kept = _Kept(
                model, model.optimizer, self.keras_function, self._key, capture, self._functions
            )
        self.capture = None
        self._functions = {}
        self.keras_function = None

    def drop_capture(self) -> None:
        """Forget a capture with nothing to log (a model without trainable weights)."""
        self.capture.uninstall()
        self.capture = None

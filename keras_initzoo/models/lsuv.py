"""Layer-sequential unit-variance initialization (Mishkin & Matas 2015) for any built model."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import keras

from keras_initzoo._records import refuse_if_parametrized
from keras_initzoo._validation import check_int, check_positive
from keras_initzoo.models.data import ModelError, as_batch, check_built, run
from keras_initzoo.models.draw import draw_kernel
from keras_initzoo.models.report import Report
from keras_initzoo.models.trace import first_tensor, intercept, moments
from keras_initzoo.models.walk import KernelSite, walk

# The largest target std whose square (the activations' variance) is finite in float32.
FLOAT32_STD_MAX = 1.8e19

# Recurrent layers call their cell once per time step: the first step's input
# says little about the sequence, so a layer holding a recurrent kernel (the
# RNN, or its cell) gets the orthonormal start only.
_RECURRENT = (keras.layers.RNN,)


def _recurrent(sites: list[KernelSite]) -> bool:
    return isinstance(sites[0].layer, _RECURRENT) or any(
        site.role == "recurrent_kernel" for site in sites
    )


@contextlib.contextmanager
def pre_activation(layer: keras.layers.Layer) -> Iterator[None]:
    """Inside the block ``layer`` returns its pre-activation (its activation is linear)."""
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear:
        yield
        return
    object.__setattr__(layer, "activation", keras.activations.linear)  # untracked, restored
    try:
        yield
    finally:
        object.__setattr__(layer, "activation", activation)


def scale_to_std(
    layer: keras.layers.Layer,
    call: Any,
    args: tuple,
    kwargs: dict,
    sites: list[KernelSite],
    target_std: float,
    tol: float,
    max_iter: int,
) -> tuple[int, float, float]:
    """Rescales ``sites`` until ``layer``'s pre-activation std is within ``tol`` of the target.

    Calls only ``layer``, on the inputs it received. Without a bias (or with
    a zero one) the pre-activation is linear in the kernel, so one rescale is
    exact and is not measured again.

    Args:
        layer: the layer whose output is measured.
        call: its original ``call``, to run it on its recorded inputs.
        args: the positional arguments it received.
        kwargs: the keyword arguments it received.
        sites: the layer's kernels, rescaled together.
        target_std: the standard deviation to reach, > 0.
        tol: the relative tolerance around ``target_std``.
        max_iter: the most calls to make.

    Returns:
        ``(calls, std before, std after)``.

    Raises:
        ModelError: when the output is constant (a dead layer) or not finite.
    """
    bias = getattr(layer, "bias", None)
    linear = bias is None or not keras.ops.convert_to_numpy(bias).any()
    first = std = math.nan
    with pre_activation(layer):
        for iteration in range(1, max_iter + 1):
            _, std = moments(first_tensor(call(*args, **kwargs)))
            first = std if iteration == 1 else first
            if not math.isfinite(std):
                raise ModelError(
                    f"The output of layer {layer.path!r} is not finite (std={std}) on the batch."
                )
            if std == 0.0:
                raise ModelError(
                    f"The output of layer {layer.path!r} has zero variance on the batch: the "
                    "layer is dead (its input is constant, or every unit is cut off)."
                )
            if abs(std - target_std) <= tol or iteration == max_iter:
                break
            for site in sites:
                site.variable.assign(site.variable * (target_std / std))
            if linear:
                std = target_std
                break
    return iteration, first, std


def _progress(total: int, verbose: bool | None) -> keras.utils.Progbar | None:
    show = total >= 50 if verbose is None else verbose
    return keras.utils.Progbar(total, unit_name="layer") if show and total else None


def lsuv(
    model: keras.Model,
    data: Any,
    *,
    target_std: float = 1.0,
    tol: float = 0.1,
    max_iter: int = 10,
    skip: Any = None,
    verbose: bool | None = None,
) -> Report:
    """Layer-sequential unit-variance initialization of any built model, in place.

    1. Every kernel is re-drawn orthonormal (per gate block for recurrent
       kernels), with its true fans' layout (:func:`keras_initzoo.models.walk.walk`).
    2. In one forward pass on ``data``, each layer, when it is called, is
       called again on the same inputs with its kernel rescaled by
       ``target_std / std`` until the standard deviation of its
       pre-activation is within ``tol`` of ``target_std`` (at most
       ``max_iter`` calls). Later layers then see the calibrated output.

    The cost is one forward pass plus a few calls of each layer: O(layers),
    not one forward pass per layer per iteration. It runs in inference mode,
    so BatchNormalization's moving statistics and dropout are untouched, and
    the model's trainable flags stay as they were. Recurrent layers get the
    orthonormal start only; layers the walk does not know are left alone.

    Examples:
        >>> model = keras.Sequential([keras.Input((16,))] +
        ...     [keras.layers.Dense(32, activation="tanh") for _ in range(5)])
        >>> report = lsuv(model, keras.random.normal((64, 16), seed=0))
        >>> all(abs(row["std after"] - 1.0) <= 0.1 for row in report)
        True

    Args:
        model: a built Keras model.
        data: an array (or a list or dict of them for several inputs), a
            ``tf.data.Dataset`` or a ``keras.utils.PyDataset``; a dataset's
            first batches are joined into one (its targets are ignored).
        target_std: the standard deviation each layer's pre-activation gets.
        tol: how close to ``target_std`` is close enough.
        max_iter: the most calls of one layer.
        skip: layers left as they are (see :func:`keras_initzoo.models.walk.walk`).
        verbose: show a progress bar; by default on models of 50 layers or more.

    Returns:
        A :class:`Report`, one row per kernel: iterations and the standard
        deviation before and after.

    Reference: Mishkin & Matas, "All you need is a good init", ICLR 2016
    (arXiv 1511.06422, 2015).
    """
    check_built(model)
    target_std = check_positive("target_std", target_std)
    if target_std > FLOAT32_STD_MAX:
        raise ValueError(
            f"`target_std` must be at most {FLOAT32_STD_MAX:.3g}: the activations are float32 "
            f"and their variance, its square, must stay finite; received target_std={target_std!r}."
        )
    tol = check_positive("tol", tol)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    batch = as_batch(data)
    found = walk(model, skip=skip)
    refuse_if_parametrized((site.variable for site in found.kernels), "lsuv", model)

    orthogonal = keras.initializers.get("zoo_orthogonal")
    for site in found.kernels:
        draw_kernel(site, orthogonal)

    by_layer: dict[int, list[KernelSite]] = {}
    for site in found.kernels:
        by_layer.setdefault(id(site.layer), []).append(site)
    calibrated = {
        key: [s for s in sites if s.role != "depthwise_kernel"] or sites
        for key, sites in by_layer.items()
        if not _recurrent(sites)
    }
    layers = [sites[0].layer for sites in calibrated.values()]
    results: dict[int, tuple[int, float, float]] = {}
    progress = _progress(len(layers), verbose)

    def handler(layer, call, args, kwargs):
        if id(layer) not in results:
            sites = calibrated[id(layer)]
            results[id(layer)] = scale_to_std(
                layer, call, args, kwargs, sites, target_std, tol, max_iter
            )
            if progress is not None:
                progress.add(1)
        return call(*args, **kwargs)

    with intercept(layers, handler):
        run(model, batch)

    report = Report(
        title=f"LSUV: target std {target_std} ± {tol}, at most {max_iter} calls per layer",
        columns=("path", "shape", "iterations", "std before", "std after", "note"),
    )
    for site in found.kernels:
        result = results.get(id(site.layer))
        if id(site.layer) not in calibrated:
            note = "recurrent: orthonormal start only"
        elif result is None:
            note = "not reached by the forward pass: orthonormal start only"
        elif site not in calibrated[id(site.layer)]:
            note = "orthonormal; the layer's other kernel was rescaled"
        else:
            note = "" if abs(result[2] - target_std) <= tol else "did not reach tol"
        iterations, before, after = (
            result if result and not note.startswith("ortho") else (0, None, None)
        )
        report.add(
            path=site.path,
            shape=tuple(site.variable.shape),
            iterations=iterations,
            **{"std before": before, "std after": after},
            note=note,
        )
    report.notes.extend(f"{path}: {why}" for path, why in found.notes)
    return report

"""Drawing one kernel with its true fans: the step every whole-model tool shares."""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any

import keras
import numpy as np

from keras_initzoo.initializers.base import ZooInitializer, make_seed_generator
from keras_initzoo.initializers.orthogonal import Orthogonal
from keras_initzoo.initializers.variance_scaling import VarianceScaling
from keras_initzoo.models.walk import KernelSite
from keras_initzoo.registry import get


def resolve(initializer: Any) -> keras.initializers.Initializer:
    """The initializer to draw from: ``get(initializer)``, Keras' own mapped to the zoo's.

    Keras' ``VarianceScaling`` family (``HeNormal``, ``GlorotUniform``, ...)
    becomes :class:`VarianceScaling` with the same scale, mode and
    distribution, and Keras' ``Orthogonal`` the zoo's, so both can draw with
    the true fans or per block. Any other Keras initializer seeded with an
    integer would return the same tensor on every call, so a copy draws from
    the next stream of that seed instead (as the zoo's do): no two kernels
    come out equal, and the same seed reproduces them.

    Args:
        initializer: anything :func:`keras_initzoo.get` takes: a ``zoo_*``
            alias or class name, a config dict, or an instance (Keras' own
            included, e.g. ``keras.initializers.HeNormal(seed=1)``).

    Returns:
        A ``keras.initializers.Initializer`` to call once per kernel.

    Raises:
        ValueError: for None or a name the zoo does not know (the error
            names the closest alias: ``"he_normal"`` suggests ``zoo_he``).
    """
    init = get(initializer)
    if init is None:
        raise ValueError("`initializer` must name an initializer; received initializer=None.")
    if isinstance(init, ZooInitializer):
        return init
    seed = getattr(init, "seed", None)
    if isinstance(init, keras.initializers.VarianceScaling):
        return VarianceScaling(init.scale, init.mode, init.distribution, seed=seed)
    if isinstance(init, keras.initializers.Orthogonal):
        return Orthogonal(gain=init.gain, seed=seed)
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        init = copy.copy(init)
        init.seed = make_seed_generator(int(seed) % 2**32)
    return init


def draw_kernel(site: KernelSite, initializer: Any) -> tuple[float | None, float]:
    """Re-draws one kernel in place; returns ``(target variance, actual variance)``.

    A :class:`VarianceScaling` draws with ``site``'s fans; any other
    initializer draws on the kernel's shape, one block at a time when
    ``site.blocks > 1`` (an orthogonal or identity matrix per gate or group,
    not one across them). The target is ``scale / fan`` for the former,
    ``gain**2 / max(rows, cols)`` for :class:`Orthogonal` (every singular
    value ``gain``), ``initializer.variance(block_shape)`` where it has that
    method, and None otherwise. Pass an instance made once by :func:`resolve`
    to draw many kernels from one stream.

    Args:
        site: the kernel, as :func:`~keras_initzoo.models.walk` found it.
        initializer: what to draw with, anything :func:`resolve` takes.

    Returns:
        ``(target variance, actual variance)``: the variance the initializer
        aims at for this kernel (None where it names none) and the drawn
        kernel's, both Python floats.
    """
    init = resolve(initializer)
    dtype = site.variable.dtype
    block = site.block_shape
    if isinstance(init, VarianceScaling):
        values = init.draw_for_fans(site.shape, dtype, site.fan_in, site.fan_out)
        target = init.variance_for_fans(site.fan_in, site.fan_out)
    else:
        draws = [init(block, dtype=dtype) for _ in range(site.blocks)]
        values = draws[0] if site.blocks == 1 else keras.ops.concatenate(draws, axis=-1)
        if isinstance(init, Orthogonal):
            cols = block[init.column_axis]
            rows = math.prod(block) // cols if cols else 0
            # gain^2 min(rows, cols) spread over rows * cols entries
            target = init.gain**2 / max(rows, cols, 1)
        else:
            variance = getattr(init, "variance", None)
            target = variance(block) if callable(variance) else None
    site.variable.assign(values)
    actual = np.var(keras.ops.convert_to_numpy(site.variable.value).astype("float64"))
    return target, float(actual)

"""Sparse initialization: a fixed number of non-zero incoming weights per unit."""

from __future__ import annotations

import math
from fractions import Fraction

import keras

from keras_initzoo._validation import check_in_range, check_positive
from keras_initzoo.initializers import sampling
from keras_initzoo.initializers.base import Seed, ZooInitializer, scheme


@scheme(
    "zoo_sparse",
    distribution="N(0, stddev²), stddev=0.01, with ⌈sparsity·fan_in⌉ zeros per unit, sparsity=0.9",
    variance="(1 - sparsity)·stddev², about",
    activations="tanh, sigmoid (deep autoencoders, Hessian-free training)",
    reference="Martens 2010",
    peers={"pytorch": "sparse_"},
)
class Sparse(ZooInitializer):
    """Draws ``N(0, stddev²)`` and zeroes a fixed number of each unit's incoming weights.

    The kernel is flattened to ``(rows, cols)`` as in :class:`Orthogonal`:
    ``cols`` the output units (the last axis), ``rows`` the product of the
    other axes, so a column holds one unit's incoming weights (``fan_in`` of
    them). In every column exactly ``ceil(sparsity * rows)`` entries, at
    positions drawn uniformly and independently per column, are zero::

        W[:, j] ~ N(0, stddev²) except at ceil(sparsity * rows) random rows, where 0

    This is PyTorch's ``sparse_``, whose 2-D ``(rows, cols)`` tensor is
    ``(out, in)``: its columns are the input units, Keras' rows. The count is
    the ceiling of the decimal ``sparsity`` times ``rows`` (``0.7 * 10`` gives 7
    zeros; PyTorch's float product ``7.000000000000001`` gives 8). For small
    ``rows`` the ceiling may zero a whole column, as in PyTorch.

    Examples:
        >>> kernel = Sparse(sparsity=0.75, seed=1)((8, 3))
        >>> keras.ops.convert_to_numpy(keras.ops.sum(kernel == 0, axis=0)).tolist()
        [6, 6, 6]

    Args:
        sparsity: the fraction of each column set to zero, in ``[0, 1)``
            (1 would zero the kernel; PyTorch accepts it).
        stddev: standard deviation of the non-zero entries, a finite number > 0.
        seed: None, an integer or a ``keras.random.SeedGenerator``.

    Reference: Martens, "Deep learning via Hessian-free optimization", ICML
    2010 (section 5: 15 non-zero incoming weights per unit).
    """

    def __init__(self, sparsity: float = 0.9, stddev: float = 0.01, seed: Seed = None):
        self.sparsity = check_in_range("sparsity", sparsity, 0.0, 1.0)
        if self.sparsity == 1.0:
            raise ValueError(
                "`sparsity` must lie in [0, 1): 1 zeroes the whole kernel; "
                f"received sparsity={sparsity!r}."
            )
        self.stddev = check_positive("stddev", stddev)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        if len(shape) < 2:
            raise ValueError(f"`shape` must have rank >= 2 for Sparse; received shape={shape}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        if rows == 0 or cols == 0:
            return keras.ops.zeros(shape, dtype=dtype)
        zeros = math.ceil(Fraction(repr(self.sparsity)) * rows)
        # Draw in float32 at least, as Orthogonal does; the cast comes last.
        compute_dtype = sampling.compute_dtype(dtype)
        values = sampling.normal((rows, cols), self.stddev, compute_dtype, self.seed_generator)
        noise = sampling.uniform((rows, cols), 0.0, 1.0, compute_dtype, self.seed_generator)
        # Each entry's rank within its column: a uniform random permutation per
        # column, even where the noise ties, so the zero count is exact.
        rank = keras.ops.argsort(keras.ops.argsort(noise, axis=0), axis=0)
        kernel = keras.ops.where(rank >= zeros, values, keras.ops.zeros_like(values))
        return keras.ops.cast(keras.ops.reshape(kernel, shape), dtype)

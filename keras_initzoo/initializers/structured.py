"""Structured initializers: identities, Dirac deltas and centre-tap matrices.

Each scheme builds one ``(in, out)`` matrix ``M``. A ``Dense`` kernel is ``M``
itself; a convolution kernel ``(k_1, ..., k_N, in, out)`` holds ``M`` at its
centre tap ``(k_1 // 2, ..., k_N // 2)`` and zeros elsewhere, so that with
stride 1, ``padding="same"`` and odd kernel sizes the layer maps the channel
vector ``x`` of every position to ``x · M``, its neighbours ignored. With an
even size the centre ``k // 2`` lies one step past the middle (as in PyTorch's
``dirac_``) and that map is shifted by one position along that axis.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_initzoo._validation import check_int, check_positive
from keras_initzoo.initializers.base import Seed, ZooInitializer, scheme
from keras_initzoo.initializers.orthogonal import Orthogonal


def _check_kernel_rank(shape: tuple[int, ...], name: str) -> None:
    if not 2 <= len(shape) <= 5:
        raise ValueError(
            f"`shape` must be a Dense kernel (in, out) or a ConvND kernel "
            f"(k_1, ..., k_N, in, out) with N in 1..3 for {name}; received shape={shape}."
        )


def _at_centre(matrix, shape: tuple[int, ...], dtype: str):
    """``matrix`` (in, out) at the centre tap of a kernel of ``shape``, zeros elsewhere."""
    matrix = keras.ops.cast(matrix, dtype)
    spatial = shape[:-2]
    if 0 in spatial:
        return keras.ops.zeros(shape, dtype=dtype)
    tap = keras.ops.reshape(matrix, (1,) * len(spatial) + shape[-2:])
    padding = [(k // 2, k - 1 - k // 2) for k in spatial] + [(0, 0), (0, 0)]
    return keras.ops.pad(tap, padding)


@scheme(
    "zoo_identity",
    distribution="gain·I; the leading identity block if rectangular",
    variance="0 (deterministic); every singular value is gain",
    activations="relu RNNs (IRNN); linear or residual stacks",
    reference="Le et al. 2015",
    peers={"keras": "Identity", "pytorch": "eye_"},
)
class Identity(ZooInitializer):
    """Fills a 2-D kernel with ``gain * I``: ``W_ij = gain`` if ``i == j``, else 0.

    A rectangular ``(rows, cols)`` kernel gets the leading identity block, as
    ``keras.ops.eye(rows, cols)``, Keras' ``Identity`` and PyTorch's ``eye_``:
    a ``Dense`` layer passes its first ``min(in, out)`` inputs through (times
    ``gain``) and leaves the other outputs at zero.

    Examples:
        >>> keras.ops.convert_to_numpy(Identity(gain=2.0)((2, 3))).tolist()
        [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
        >>> layer = keras.layers.SimpleRNN(8, recurrent_initializer=Identity(), activation="relu")

    Args:
        gain: multiplier, a finite number > 0.
        seed: accepted for a uniform interface; an identity uses no randomness.

    Reference: Le, Jaitly and Hinton, "A Simple Way to Initialize Recurrent
    Networks of Rectified Linear Units", arXiv:1504.00941 (2015).
    """

    draws_randomly = False

    def __init__(self, gain: float = 1.0, seed: Seed = None):
        self.gain = check_positive("gain", gain)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        if len(shape) != 2:
            raise ValueError(f"`shape` must be 2-D for an identity matrix; received shape={shape}.")
        return keras.ops.eye(*shape, dtype=dtype) * self.gain


@scheme(
    "zoo_dirac",
    distribution="1 at the centre tap where output channel = input channel (per group), else 0",
    variance="0 (deterministic)",
    activations="deep plain convnets (DiracNets): the identity at the start",
    reference="Zagoruyko & Komodakis 2017",
    peers={"pytorch": "dirac_"},
)
class Dirac(ZooInitializer):
    """A convolution kernel that makes the layer the identity on its channels.

    For a kernel ``(k_1, ..., k_N, in_g, out)`` of a convolution with
    ``groups`` groups (Keras' layout: ``in_g`` is the input channels per group,
    output channel ``j`` belongs to group ``j // out_g``, ``out_g = out / groups``,
    and reads that group's inputs), with ``c = (k_1 // 2, ..., k_N // 2)``::

        W[c, i, j] = 1   if i == j mod out_g,   else 0

    so output channel ``j`` copies input channel ``j`` when ``in == out``:
    ``Conv2D(C, 3, padding="same", groups=g, kernel_initializer=Dirac(groups=g))``
    returns its input. When ``out_g > in_g`` the output channels with
    ``j mod out_g >= in_g`` stay zero; when ``out_g < in_g`` the group's last
    ``in_g - out_g`` inputs are dropped (PyTorch's ``dirac_`` keeps
    ``min(in_g, out_g)`` channels likewise). A 2-D ``(in, out)`` kernel gets the
    same matrix: ``Identity`` for ``groups=1``, one identity block per group
    otherwise. Even kernel sizes: see the module docstring.

    Examples:
        >>> layer = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer=Dirac())
        >>> x = keras.random.normal((1, 5, 5, 4), seed=0)
        >>> bool(keras.ops.all(layer(x) == x))
        True

    Args:
        groups: the layer's ``groups``, an integer >= 1 that divides ``out``.
        seed: accepted for a uniform interface; a Dirac kernel uses no randomness.

    Reference: Zagoruyko and Komodakis, "DiracNets: Training Very Deep Neural
    Networks Without Skip-Connections", arXiv:1706.00388 (2017).
    """

    draws_randomly = False

    def __init__(self, groups: int = 1, seed: Seed = None):
        self.groups = check_int("groups", groups, minimum=1)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        _check_kernel_rank(shape, "Dirac")
        in_per_group, out = shape[-2:]
        if out % self.groups:
            raise ValueError(
                f"`groups`={self.groups} must divide the output channels shape[-1]={out}; "
                f"received shape={shape}."
            )
        out_per_group = max(out // self.groups, 1)  # max: out == 0 leaves nothing to divide
        matrix = np.arange(in_per_group)[:, None] == np.arange(out)[None, :] % out_per_group
        return _at_centre(matrix, shape, dtype)


@scheme(
    "zoo_delta_orthogonal",
    distribution="gain·(Haar orthogonal (in, out) matrix) at the centre tap, 0 elsewhere",
    variance="gain²/max(in, out) at the centre tap, 0 elsewhere",
    activations="tanh, linear: dynamical isometry in very deep CNNs",
    reference="Xiao et al. 2018",
    peers={"jax": "delta_orthogonal"},
)
class DeltaOrthogonal(ZooInitializer):
    """A random orthogonal matrix at the kernel's centre tap, zeros elsewhere.

    With ``Q`` drawn by :class:`Orthogonal` for the shape ``(in, out)``
    (uniform over the (semi-)orthogonal matrices) and ``c`` the centre tap::

        W[c] = gain * Q,   W[t] = 0 for t != c

    A row vector ``x`` of ``in`` channels maps to ``y = x W[c]`` at every
    position (stride 1, ``padding="same"``, odd sizes). If ``in <= out``, the
    rows of ``Q`` are orthonormal, ``Q Q^T = I``, so ``||y|| = gain ||x||`` at
    every position: an isometry up to ``gain``. If ``in > out``, the columns
    are, ``Q^T Q = I``, and ``y`` is the projection of ``x`` on an
    ``out``-dimensional subspace: ``||y|| <= gain ||x||``. JAX's
    ``delta_orthogonal`` rejects ``in > out`` and 2-D shapes; here the first
    is that projection and a 2-D ``(in, out)`` kernel is plain
    ``Orthogonal(gain)``. For a grouped convolution, each group's matrix is
    the group's columns of ``Q``, not an orthogonal matrix of its own.

    Examples:
        >>> layer = keras.layers.Conv2D(16, 3, padding="same", kernel_initializer=DeltaOrthogonal())

    Args:
        gain: multiplier, a finite number > 0.
        seed: None, an integer or a ``keras.random.SeedGenerator``.

    Reference: Xiao, Bahri, Sohl-Dickstein, Schoenholz and Pennington,
    "Dynamical Isometry and a Mean Field Theory of CNNs: How to Train
    10,000-Layer Vanilla Convolutional Neural Networks", ICML 2018.
    """

    def __init__(self, gain: float = 1.0, seed: Seed = None):
        self.gain = check_positive("gain", gain)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        _check_kernel_rank(shape, "DeltaOrthogonal")
        # Shares this instance's seed generator: each call draws the next matrix.
        matrix = Orthogonal(gain=self.gain, seed=self.seed_generator).draw(shape[-2:], dtype)
        return _at_centre(matrix, shape, dtype)


def _sylvester_hadamard(rows: int, cols: int) -> np.ndarray:
    """The leading ``(rows, cols)`` block of Sylvester's Hadamard matrices.

    Sylvester's construction ``H_1 = [1]``, ``H_2n = [[H_n, H_n], [H_n, -H_n]]``
    gives ``H[i, j] = (-1)^popcount(i & j)`` for every ``H_n`` with
    ``n > max(i, j)``; computed so, the block needs no ``n x n`` matrix.

    Examples:
        >>> _sylvester_hadamard(2, 4).tolist()
        [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]]
    """
    both = np.arange(rows)[:, None] & np.arange(cols)[None, :]
    parity = np.zeros_like(both)
    while both.any():
        parity ^= both & 1
        both >>= 1
    return 1.0 - 2.0 * parity


def _zero_matrix(fan_in: int, fan_out: int) -> np.ndarray:
    """ZerO's ``(fan_in, fan_out)`` matrix (Algorithm 1), in Keras' ``(in, out)`` layout.

    ``eye(fan_in, fan_out)`` unless ``fan_out > fan_in``; then, with
    ``m = ceil(log2(fan_out))``, ``2^(-(m-1)/2)`` times the leading block of
    the Hadamard matrix of size ``2^m``.

    Examples:
        >>> (_zero_matrix(2, 4) * 2**0.5).round(12).tolist()  # m = 2, c = 2^(-1/2)
        [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]]
    """
    if fan_out <= fan_in:
        return np.eye(fan_in, fan_out)
    m = (fan_out - 1).bit_length()  # ceil(log2(fan_out)), exact in integers
    return 2.0 ** (-(m - 1) / 2) * _sylvester_hadamard(fan_in, fan_out)


@scheme(
    "zoo_hadamard",
    distribution="I; partial identity (in >= out); ±2^(-(m-1)/2) Hadamard block (in < out)",
    variance="0 (deterministic)",
    activations="relu, residual nets",
    reference="Zhao et al. 2022",
)
class ZerO(ZooInitializer):
    """ZerO: a deterministic kernel of zeros, ones and (scaled) Hadamard signs.

    Algorithm 1 of the paper, translated to Keras' ``(in, out)`` layout (the
    paper's ``W`` is ``(out, in)``; the Sylvester Hadamard matrix ``H`` is
    symmetric, so its transpose is its own leading block):

    * ``in == out``: ``W = I``, the identity;
    * ``in > out`` (dimension decreasing): ``W = eye(in, out)``, the partial
      identity, passing the first ``out`` inputs on;
    * ``in < out`` (dimension increasing): with ``m = ceil(log2(out))`` and
      ``c = 2^(-(m-1)/2)``, ``W = c * H_{2^m}[:in, :out]``. Every entry is
      ``±c`` and ``W`` has rank ``in``: no input direction is lost and every
      output is used. A partial identity there would leave the extra outputs
      at zero and, by the paper's Theorem 1, the network's rank bounded
      during training (its "training degeneracy").

    ``c² 2^m = 2``: when ``out = 2^m`` the rows of ``W`` are orthogonal with
    squared norm 2, ``||x W||² = 2 ||x||²``, the factor a following ReLU halves
    on average, as in He et al. The authors' MNIST notebook divides by
    ``2^(m/2)`` instead, making ``H`` orthonormal; this class follows the
    paper. A convolution kernel holds this matrix at its centre tap, as in the
    paper's extension to convolutions. Every call returns the same tensor.

    Examples:
        >>> keras.ops.convert_to_numpy(ZerO()((3, 2))).tolist()
        [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
        >>> layer = keras.layers.Dense(64, kernel_initializer=ZerO())

    Args:
        seed: accepted for a uniform interface; ZerO uses no randomness.

    Reference: Zhao, Schäfer and Anandkumar, "ZerO Initialization:
    Initializing Neural Networks with only Zeros and Ones", TMLR 2022
    (arXiv:2110.12661).
    """

    draws_randomly = False

    def __init__(self, seed: Seed = None):
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        _check_kernel_rank(shape, "ZerO")
        return _at_centre(_zero_matrix(*shape[-2:]), shape, dtype)

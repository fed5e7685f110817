"""What every keras_initzoo initializer shares: seeds, checks, config, and its table row.

A scheme is one class in one family module. The :func:`scheme` decorator puts
its aliases and its row of the scheme table on the class; the registry, ``get``,
``list_initializers()`` and the README table are derived from those rows.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo._validation import check_allocatable, check_float_dtype, check_shape

Seed = int | keras.random.SeedGenerator | None


def _next_stream(seed: int) -> int:
    """The seed of the next sub-stream of ``seed`` in this Keras session.

    Sub-streams are numbered per integer seed like layer names are numbered
    per class (``dense``, ``dense_1``, ...), and ``keras.backend.clear_session()``
    restarts both.
    """
    counters = internals.session_dict("keras_initzoo_seed_streams")
    index = counters.get(seed, 0)
    counters[seed] = index + 1
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint32)[0])


def _seed_state(seed: int) -> int:
    """A seed in ``[0, 2**32)`` as the backend's seed state stores it.

    PyTorch has no uint32: Keras keeps its seeds in int32 and reads the bits
    back as uint32 where it seeds a generator (``& 0xFFFFFFFF``), but a value
    of ``2**31`` or more does not fit the int32 state (``SeedGenerator(2**31)``
    raises on PyTorch). Such a value passes as its two's complement, which
    Keras reads back as the same uint32 seed.
    """
    if internals.random_seed_dtype() == "int32" and seed >= 2**31:
        return seed - 2**32
    return seed


def _first_state(seed: object) -> int | None:
    """The first seed state of the generator an integer (or no) ``seed`` gives.

    Keras initializers with an integer (or no) seed return the same tensor on
    every call, so one instance shared by several layers gives them identical
    kernels: the symmetry problem. Here every instance draws from a
    ``SeedGenerator`` whose state advances on each call, and an integer seed
    names a family of streams: each initializer built with it, whether by the
    user, by a layer cloning it from its config (``MultiHeadAttention`` does)
    or by loading a saved model, takes the next stream. No two of them draw
    the same kernel, while the same seed and the same build order reproduce
    every tensor exactly, in a fresh process or after ``clear_session()``.
    ``None`` stays None: a random seed, taken when the generator is made.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not (0 <= seed < 2**32):
        raise ValueError(
            "`seed` must be None, an integer in [0, 2**32) or a "
            f"keras.random.SeedGenerator; received seed={seed!r}."
        )
    return _seed_state(_next_stream(int(seed)))


def make_seed_generator(seed: object) -> keras.random.SeedGenerator:
    """The generator a ``seed`` argument draws from, as the zoo's initializers take it.

    The package's home for seeds: the initializers, ``kiz.models.reinitialize``
    and ``kiz.mup.parametrize`` all turn their ``seed`` argument into a
    generator here, so an integer seed names the same family of streams
    everywhere (see ``_first_state``).

    Args:
        seed: None (a random seed), an integer in ``[0, 2**32)``, or a
            ``keras.random.SeedGenerator``, which is used (and shared) as it is.

    Returns:
        A ``keras.random.SeedGenerator``.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return seed
    return keras.random.SeedGenerator(_first_state(seed))


def _outside_traces():
    """A context where seed bookkeeping runs eagerly, even while JAX traces the draw.

    Keras builds a large sharded kernel inside ``jax.jit(initializer.__call__,
    out_shardings=...)`` (``keras/src/backend/jax/core.py``); the seed states are
    read and written on the host all the same, so no tracer reaches them.
    """
    if keras.backend.backend() == "jax":
        import jax

        return jax.ensure_compile_time_eval()
    return contextlib.nullcontext()


class _CallSeeds(keras.random.SeedGenerator):
    """The seeds of one ``__call__``: ``[seed, n]``, ``[seed, n + 1]``, ... counted on the host.

    Exactly what ``SeedGenerator.next()`` returns from a state ``[seed, n]``,
    but nothing is assigned while the draw runs (or is traced): the instance's
    generator moves on by ``count`` once the draw is done. Holds no backend
    variable.
    """

    def __init__(self, start: np.ndarray) -> None:  # no super().__init__: no state variable
        self.name = "zoo_call_seeds"
        self._initial_seed = None
        self._start = start.astype(np.int64)
        self.count = 0

    def state_after(self, count: int) -> np.ndarray:
        # Wraps like the backend's own integer add (uint32, or int32 on PyTorch).
        after = self._start + np.array([0, count], np.int64)
        return after.astype(internals.random_seed_dtype())

    def next(self, ordered=True):
        seed = self.state_after(self.count)
        self.count += 1
        return internals.backend_convert_to_tensor(seed, dtype=internals.random_seed_dtype())


def _check_serialized_seed_generator(seed: dict) -> int | None:
    """Returns the seed of a serialized ``SeedGenerator``; runs no code.

    Only the shape Keras writes is accepted: ``{"class_name": "SeedGenerator",
    "config": {"seed": <int or None>, "name": <str>}, ...}``.
    """
    inner = seed.get("config")
    valid = (
        seed.get("class_name") == "SeedGenerator"
        and isinstance(inner, dict)
        and set(inner) <= {"seed", "name"}
        and isinstance(inner.get("name", ""), str)
        and (
            inner.get("seed") is None
            or isinstance(inner["seed"], numbers.Integral)
            and not isinstance(inner["seed"], bool)
            and 0 <= inner["seed"] < 2**32
        )
    )
    if not valid:
        raise ValueError(
            "`seed` in a config must be None, an integer in [0, 2**32) or a "
            f"serialized SeedGenerator; received seed={seed!r}."
        )
    return None if inner.get("seed") is None else int(inner["seed"])


def _to_json(value: Any) -> Any:
    if isinstance(value, keras.random.SeedGenerator):
        return keras.saving.serialize_keras_object(value)
    if isinstance(value, (tuple, list)):
        return [_to_json(item) for item in value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


class ZooInitializer(keras.initializers.Initializer):
    """Base of every keras_initzoo initializer.

    Subclasses check their arguments in ``__init__``, keep each constructor
    argument as an attribute of the same name and implement
    ``draw(shape, dtype)``. This class then supplies what all share:

    * ``__call__`` checks ``shape`` (non-negative integers) and ``dtype``
      (floating point) before drawing;
    * ``seed`` handling (see ``_first_state``): ``seed`` keeps the
      argument as given, ``seed_generator`` is what the draws advance. Each
      call reads the generator's state on the host, hands ``draw`` the
      call's seeds (:class:`_CallSeeds`) and moves the state on once the draw
      is done, so a draw that JAX traces (Keras' sharded build of a large
      kernel) leaves no tracer in the state, a user's ``SeedGenerator``
      included, and the eager and the traced build draw the same values.
      The zoo's own generator is made at the first draw (an instance can be
      made before ``keras.distribution.initialize``); for ``seed=None`` its
      seed comes then from Python's ``random``, as ``SeedGenerator(None)``'s does: after
      ``keras.distribution.initialize`` (which seeds it alike in every
      process) or ``keras.utils.set_random_seed``, every process draws the
      same weights, as Keras' own unseeded initializers do;
    * ``get_config`` with exactly the constructor's arguments, in JSON types;
    * ``from_config`` that rejects unknown keys and never executes code.
    """

    # False for schemes that draw the same tensor every time (constants, identities).
    draws_randomly = True

    def __init__(self, seed: Seed | dict = None):
        # ``seed`` stays as given, for the config; ``seed_generator`` is drawn from.
        if isinstance(seed, dict):
            # A serialized SeedGenerator, from a config: kept as written, so it
            # round-trips unchanged however often it is saved and loaded, while
            # the draws come from the next stream of its seed, so that layers
            # cloning one config (MultiHeadAttention's query, key and value)
            # still get different kernels.
            seed_or_generator = _check_serialized_seed_generator(seed)
        else:
            seed_or_generator = seed
        self.seed = seed
        # A generator of the zoo's own is made at the first draw: no backend
        # variable exists before it (JAX refuses ``jax.distributed.initialize``
        # once one does), and ``seed=None`` takes Python's ``random`` then.
        self._generator: keras.random.SeedGenerator | None = None
        self._first_state: int | None = None
        if isinstance(seed_or_generator, keras.random.SeedGenerator):
            self._generator = seed_or_generator
        else:
            self._first_state = _first_state(seed_or_generator)
        self._call_seeds: _CallSeeds | None = None  # set while a call draws

    @property
    def seed_generator(self) -> keras.random.SeedGenerator:
        """What the draws take seeds from: the running call's seeds, else the generator."""
        return self._call_seeds or self._stream()

    def _stream(self) -> keras.random.SeedGenerator:
        if self._generator is None:
            with _outside_traces():
                self._generator = keras.random.SeedGenerator(self._first_state)
        return self._generator

    def __call__(self, shape, dtype=None):
        shape, dtype = check_shape(shape), check_float_dtype(dtype)
        check_allocatable(shape, dtype)
        self._check_range(dtype)
        generator = self._stream()
        if isinstance(generator, _CallSeeds):  # called from another initializer's draw
            return self.draw(shape, dtype)
        with _outside_traces():
            start = np.asarray(keras.ops.convert_to_numpy(generator.state.value))
        self._call_seeds = seeds = _CallSeeds(start)
        try:
            value = self.draw(shape, dtype)
        finally:
            self._call_seeds = None
        if seeds.count:
            with _outside_traces():
                generator.state.assign(seeds.state_after(seeds.count))
        return value

    def _check_range(self, dtype: str) -> None:
        """Numeric arguments past ``dtype``'s range (``Constant(1e308)`` in float32) would
        draw inf: refused, naming the argument, before drawing."""
        limit = float(np.finfo(dtype).max)
        for name, value in self.get_config().items():
            # an infinite bound (TruncatedNormal's upper=inf) is legal and checked when built
            if isinstance(value, float) and math.isfinite(value) and abs(value) > limit:
                raise ValueError(
                    f"`{name}` of {type(self).__name__} must lie within {dtype}'s range "
                    f"(|{name}| <= {limit:.4g}) to draw a {dtype} kernel; received "
                    f"{name}={value!r}."
                )

    def draw(self, shape: tuple[int, ...], dtype: str):
        """Returns a tensor of ``shape`` and ``dtype``; both already checked."""
        raise NotImplementedError(f"{type(self).__name__} must implement `draw`.")

    @classmethod
    def _constructor_arguments(cls) -> tuple[str, ...]:
        parameters = inspect.signature(cls.__init__).parameters
        return tuple(name for name in parameters if name != "self")

    def get_config(self) -> dict[str, Any]:
        return {name: _to_json(getattr(self, name)) for name in self._constructor_arguments()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ZooInitializer:
        if not isinstance(config, dict):
            raise ValueError(
                f"`config` for {cls.__name__} must be a dict; received {type(config).__name__}."
            )
        allowed = cls._constructor_arguments()
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise ValueError(
                f"Unknown key(s) {unknown} in the config of {cls.__name__}; "
                f"allowed keys are {list(allowed)}."
            )
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@dataclass(frozen=True, eq=False)
class InitializerInfo:
    """One row of the scheme table: what an alias draws and when to use it.

    ``preset`` holds the constructor arguments the alias fixes (``zoo_gelu`` is
    ``GainScaled(activation="gelu")``); ``peers`` the same scheme's name in
    Keras, PyTorch and JAX, where they have one. :func:`scheme` makes each
    row; :func:`keras_initzoo.list_initializers` returns them.

    Attributes:
        alias: the ``zoo_*`` name Keras resolves, e.g. ``"zoo_he"``.
        cls: the initializer class the alias builds.
        distribution: what it draws, in words (``"truncated normal"``).
        variance: the variance as a formula (``"2/((1+a²)·fan_in)"``).
        activations: the activations it suits, in words.
        reference: the paper or lesson it comes from.
        preset: the constructor arguments the alias fixes (default: none).
        peers: the scheme's name in ``"keras"``, ``"pytorch"`` and ``"jax"``,
            where they have one (default: none).
    """

    alias: str
    cls: type[ZooInitializer]
    distribution: str
    variance: str
    activations: str
    reference: str
    preset: Mapping[str, Any] = field(default_factory=dict)
    peers: Mapping[str, str] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        return self.cls.__name__

    def make(self, **arguments: Any) -> ZooInitializer:
        """An instance with the alias' preset, overridden by ``arguments``."""
        return self.cls(**{**self.preset, **arguments})

    def from_config(self, config: dict[str, Any]) -> ZooInitializer:
        """Lets Keras build the alias by name (``keras.initializers.get("zoo_gelu")``)."""
        return self.cls.from_config({**self.preset, **config})


PEER_LIBRARIES = ("keras", "pytorch", "jax")

# Every row, in the order the family modules define them: the scheme table.
SCHEMES: list[InitializerInfo] = []


def scheme(
    *aliases: str,
    distribution: str,
    variance: str,
    activations: str,
    reference: str,
    preset: Mapping[str, Any] | None = None,
    peers: Mapping[str, str] | None = None,
) -> Callable[[type[ZooInitializer]], type[ZooInitializer]]:
    """Class decorator: registers ``aliases`` for the class with its table row.

    Example::

        @scheme("zoo_he", "zoo_kaiming", distribution="truncated normal",
                variance="2/fan_in", activations="relu", reference="He et al. 2015",
                peers={"keras": "HeNormal", "pytorch": "kaiming_normal_"})
        class HeNormal(VarianceScaling): ...

    ``peers`` names the scheme in :data:`PEER_LIBRARIES`; it fills the README's
    comparison table and lets ``get("he_normal")`` suggest ``zoo_he``. Call
    :func:`keras_initzoo.register` once the class exists, so that Keras finds
    the new aliases.

    Args:
        *aliases: one or more ``zoo_*`` names for the class, not yet taken.
        distribution: what it draws, in words, for the table (keyword only,
            as all below).
        variance: the variance as a formula, e.g. ``"2/fan_in"``.
        activations: the activations it suits, in words.
        reference: the paper or lesson it comes from.
        preset: constructor arguments the aliases fix (default None: none),
            e.g. ``{"activation": "gelu"}`` for ``zoo_gelu``.
        peers: the scheme's name in ``"keras"``, ``"pytorch"`` or ``"jax"``
            (default None: none).

    Returns:
        The decorator, which adds one :class:`InitializerInfo` row per alias
        and returns the class unchanged.

    Raises:
        ValueError: without aliases, with a peer library not in
            :data:`PEER_LIBRARIES`, or (when decorating) for an alias already
            registered.
    """
    unknown = set(peers or ()) - set(PEER_LIBRARIES)
    if not aliases or unknown:
        raise ValueError(f"`scheme` needs aliases and peers among {PEER_LIBRARIES}.")

    def register(cls: type[ZooInitializer]) -> type[ZooInitializer]:
        taken = {info.alias for info in SCHEMES}
        for alias in aliases:
            if alias in taken:
                raise ValueError(f"The alias {alias!r} is already registered.")
            SCHEMES.append(
                InitializerInfo(
                    alias,
                    cls,
                    distribution,
                    variance,
                    activations,
                    reference,
                    MappingProxyType(dict(preset or {})),
                    MappingProxyType(dict(peers or {})),
                )
            )
        return cls

    return register

"""The base class every keras_initzoo initializer shares: seeds, checks, config."""

from __future__ import annotations

import inspect
import numbers
from typing import Any

import keras
import numpy as np
from keras.src.backend.common import global_state

from keras_initzoo._validation import check_float_dtype, check_shape

Seed = int | keras.random.SeedGenerator | None


def _next_stream(seed: int) -> int:
    """The seed of the next sub-stream of ``seed`` in this Keras session.

    Sub-streams are numbered per integer seed like layer names are numbered
    per class (``dense``, ``dense_1``, ...), and ``keras.backend.clear_session()``
    restarts both.
    """
    counters = global_state.get_global_attribute(
        "keras_initzoo_seed_streams", {}, set_to_default=True
    )
    index = counters.get(seed, 0)
    counters[seed] = index + 1
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint32)[0])


def _make_seed_generator(seed: object) -> keras.random.SeedGenerator:
    """Turns a ``seed`` argument into the generator the instance draws from.

    Keras initializers with an integer (or no) seed return the same tensor on
    every call, so one instance shared by several layers gives them identical
    kernels: the symmetry problem. Here every instance draws from a
    ``SeedGenerator`` whose state advances on each call, and an integer seed
    names a family of streams: each initializer built with it, whether by the
    user, by a layer cloning it from its config (``MultiHeadAttention`` does)
    or by loading a saved model, takes the next stream. No two of them draw
    the same kernel, while the same seed and the same build order reproduce
    every tensor exactly, in a fresh process or after ``clear_session()``.
    A ``SeedGenerator`` passed in is used (and shared) as it is.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return seed
    if seed is None:
        return keras.random.SeedGenerator()
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not (0 <= seed < 2**32):
        raise ValueError(
            "`seed` must be None, an integer in [0, 2**32) or a "
            f"keras.random.SeedGenerator; received seed={seed!r}."
        )
    return keras.random.SeedGenerator(_next_stream(int(seed)))


def _seed_from_config(seed: object) -> object:
    """Reads back a serialized ``SeedGenerator`` without running any code.

    Only the one shape Keras writes is accepted,
    ``{"class_name": "SeedGenerator", "config": {"seed": <int or None>}, ...}``.
    """
    if not isinstance(seed, dict):
        return seed
    inner = seed.get("config")
    if seed.get("class_name") != "SeedGenerator" or not isinstance(inner, dict):
        raise ValueError(
            "`seed` in a config must be None, an integer or a serialized "
            f"SeedGenerator; received seed={seed!r}."
        )
    return _make_seed_generator(inner.get("seed"))


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
    * ``seed`` handling (see ``_make_seed_generator``);
    * ``get_config`` with exactly the constructor's arguments, in JSON types;
    * ``from_config`` that rejects unknown keys and never executes code.
    """

    def __init__(self, seed: Seed = None):
        self._init_seed = seed
        self.seed = _make_seed_generator(seed)

    def __call__(self, shape, dtype=None):
        return self.draw(check_shape(shape), check_float_dtype(dtype))

    def draw(self, shape: tuple[int, ...], dtype: str):
        """Returns a tensor of ``shape`` and ``dtype``; both already checked."""
        raise NotImplementedError(f"{type(self).__name__} must implement `draw`.")

    @classmethod
    def _constructor_arguments(cls) -> tuple[str, ...]:
        parameters = inspect.signature(cls.__init__).parameters
        return tuple(name for name in parameters if name != "self")

    def get_config(self) -> dict[str, Any]:
        return {
            name: _to_json(self._init_seed if name == "seed" else getattr(self, name))
            for name in self._constructor_arguments()
        }

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
        config = dict(config)
        if "seed" in config:
            config["seed"] = _seed_from_config(config["seed"])
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

"""Shadowing a method of one object with an instance attribute, and undoing it.

The package routes a layer's ``call``, a model's ``compute_loss``, or an
attention layer's ``_compute_attention`` through its own function for a while
(a measuring pass, a logged fit). An instance attribute shadows the class's
method wherever it is looked up on ``self``; it is set past Keras' attribute
tracking, and the undoing puts back whatever instance attribute was there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def shadow(owner: Any, name: str, replacement: Callable) -> Callable[[], None]:
    """Sets ``owner.<name> = replacement`` on the instance; returns the function that undoes it.

    >>> class Greeter:
    ...     def hello(self):
    ...         return "hello"
    >>> greeter = Greeter()
    >>> undo = shadow(greeter, "hello", lambda: "routed")
    >>> greeter.hello(), undo(), greeter.hello()
    ('routed', None, 'hello')
    """
    own = owner.__dict__.get(name)  # an instance attribute to put back, if any
    object.__setattr__(owner, name, replacement)

    def undo() -> None:
        if own is None:
            object.__delattr__(owner, name)
        else:
            object.__setattr__(owner, name, own)

    return undo

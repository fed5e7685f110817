"""Every public callable with three or more parameters names each one in an ``Args:`` section.

ruff's pydocstyle rules (pyproject.toml, Google convention) check the form of a
docstring, and D417 checks an ``Args:`` section against its function's signature
once the section exists; nothing in ruff asks for the section. This test does,
over the public names: ``keras_initzoo.__all__`` and the public names of
``kiz.mup``, ``kiz.callbacks``, ``kiz.models``, ``kiz.optimizers`` and
``kiz.layers``, for functions, classes (the class docstring with its
``__init__``'s, as mkdocstrings merges them) and the public methods a class
defines itself. A dataclass may name its fields under ``Attributes:`` instead,
the Google section for a record's fields. A method's ``self`` (or ``cls``) does not count.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Iterator

import pytest

import keras_initzoo as kiz
from keras_initzoo import callbacks, layers, models, mup, optimizers

NAMESPACES = (kiz, mup, callbacks, models, optimizers, layers)
MIN_PARAMETERS = 3
# "name:" or "name (type):" at the section's first indentation; "*args" and "**kwargs" too.
ENTRY = re.compile(r"^(\*{0,2}\w+)(?:\s*\([^)]*\))?\s*:")


def public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name in vars(module) if not name.startswith("_")]
    return list(names)


def public_callables() -> Iterator[tuple[str, Callable, str, bool]]:
    """Yields (qualified name, callable, its docstring, whether Attributes: may stand in)."""
    seen: set[int] = set()
    for module in NAMESPACES:
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj) or id(obj) in seen:
                continue
            if not getattr(obj, "__module__", "").startswith("keras_initzoo"):
                continue  # a re-exported outside name
            seen.add(id(obj))
            qualified = f"{module.__name__}.{name}"
            if not inspect.isclass(obj):
                yield qualified, obj, inspect.getdoc(obj) or "", False
                continue
            own_init = vars(obj).get("__init__")
            docs = [inspect.getdoc(obj) or "", (own_init and inspect.getdoc(own_init)) or ""]
            yield qualified, obj, "\n\n".join(docs), dataclasses.is_dataclass(obj)
            for method_name, method in vars(obj).items():
                if not method_name.startswith("_") and inspect.isfunction(method):
                    yield f"{qualified}.{method_name}", method, inspect.getdoc(method) or "", False


def parameter_names(obj: Callable) -> list[str]:
    """The names a caller passes, ``*args`` and ``**kwargs`` spelled with their stars."""
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    parameters = list(inspect.signature(obj).parameters.values())  # a class's: without self
    if not inspect.isclass(obj) and parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]  # a method, taken from its class unbound
    return [stars.get(parameter.kind, "") + parameter.name for parameter in parameters]


def section_entries(docstring: str, header: str) -> set[str] | None:
    """The names listed under ``header`` (e.g. ``"Args:"``), or None without that section."""
    lines = docstring.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == header]
    if not starts:
        return None
    names: set[str] = set()
    for start in starts:
        header_indent = len(lines[start]) - len(lines[start].lstrip())
        entry_indent = None
        for line in lines[start + 1 :]:
            if not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= header_indent:
                break  # the next section or paragraph
            entry_indent = indent if entry_indent is None else entry_indent
            match = ENTRY.match(line.strip())
            if indent == entry_indent and match:
                names.add(match.group(1))
    return names


def undocumented_parameters(obj: Callable, docstring: str, attributes_ok: bool) -> list[str]:
    """The parameters the docstring's ``Args:`` section leaves out (all, without one)."""
    wanted = parameter_names(obj)
    listed = section_entries(docstring, "Args:") or set()
    if attributes_ok:
        listed |= section_entries(docstring, "Attributes:") or set()
    return [name for name in wanted if name not in listed and name.lstrip("*") not in listed]


CASES = [
    pytest.param(obj, doc, attributes_ok, id=name)
    for name, obj, doc, attributes_ok in public_callables()
    if len(parameter_names(obj)) >= MIN_PARAMETERS
]


def test_the_walk_finds_the_public_api():
    """A walk that lost a namespace would pass vacuously; these must be among the cases."""
    ids = {case.id for case in CASES}
    for name in (
        "keras_initzoo.HeNormal",
        "keras_initzoo.compute_fans",
        "keras_initzoo.lsuv",
        "keras_initzoo.models.synthetic_batch",
        "keras_initzoo.mup.coord_check",
        "keras_initzoo.GradientNormLogger",
        "keras_initzoo.optimizers.adaptive_clipping",
        "keras_initzoo.layers.WSDense",
    ):
        assert name in ids
    assert len(CASES) >= 40


@pytest.mark.parametrize(("obj", "docstring", "attributes_ok"), CASES)
def test_every_parameter_is_in_args(obj, docstring, attributes_ok):
    missing = undocumented_parameters(obj, docstring, attributes_ok)
    assert not missing, f"Args: lacks {missing}"


def _documents_two_of_three(alpha: int, beta: int, gamma: int = 0) -> int:
    """The control: a function whose Args: section leaves ``gamma`` out.

    Args:
        alpha: the first.
        beta (int): the second, with a type.
            A continuation line: gamma: is not an entry.

    Returns:
        The sum.
    """
    return alpha + beta + gamma


def _documents_none(alpha: int, *rest: int, **options: int) -> int:
    """The control without an ``Args:`` section at all."""
    return alpha


def test_the_check_fails_a_docstring_that_leaves_one_out():
    doc = inspect.getdoc(_documents_two_of_three)
    assert undocumented_parameters(_documents_two_of_three, doc, False) == ["gamma"]
    doc = inspect.getdoc(_documents_none)
    assert undocumented_parameters(_documents_none, doc, False) == ["alpha", "*rest", "**options"]

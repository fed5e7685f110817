"""Keras' own initializer tests, run against the zoo's classes.

The test modules are loaded from the installed Keras (its wheel ships them), not
copied here, and their ``initializers`` module is replaced by the zoo's classes
under Keras' names. Where the zoo differs on purpose the test is an expected
failure, with the reason; the README lists them. A strict xfail turns into a
failure if Keras' test starts passing, so the list cannot go stale.
"""

from __future__ import annotations

import importlib.util
import pathlib
import types
import unittest

import keras
import pytest

import keras_initzoo as kiz

KERAS_TESTS = pathlib.Path(keras.__file__).parent / "src" / "initializers"
MODULES = ("constant_initializers_test", "random_initializers_test")

ZOO_AS_KERAS = types.SimpleNamespace(
    Zeros=kiz.Zeros,
    Ones=kiz.Ones,
    Constant=kiz.Constant,
    Identity=kiz.Identity,
    RandomNormal=kiz.SimpleNormal,
    RandomUniform=kiz.SimpleUniform,
    TruncatedNormal=kiz.TruncatedNormal,
    VarianceScaling=kiz.VarianceScaling,
    GlorotUniform=kiz.GlorotUniform,
    GlorotNormal=kiz.GlorotNormal,
    HeNormal=kiz.HeNormal,
    HeUniform=kiz.HeUniform,
    LecunNormal=kiz.LecunNormal,
    LecunUniform=kiz.LecunUniform,
    Orthogonal=kiz.Orthogonal,
    get=kiz.get,
)

SEEDED_DRAWS_ANEW = (
    "a seeded zoo instance draws anew on every call (one instance shared by several "
    "layers must not give them identical kernels); Keras' returns the same tensor"
)
# test name -> why the zoo does not keep that assertion
ON_PURPOSE = {
    "test_random_normal": SEEDED_DRAWS_ANEW,
    "test_orthogonal": "kiz.get does not know Keras' legacy class name 'OrthogonalInitializer'",
    "test_identity_initializer": "kiz.get does not know Keras' legacy class name "
    "'IdentityInitializer'",
    "test_get_method": "kiz.get resolves zoo names only ('glorot_normal' gets a suggestion "
    "of 'zoo_glorot_normal'); keras.initializers.get resolves both",
    "test_variance_scaling_invalid_mode": "the zoo's errors name the argument and the allowed "
    "values ('`mode` must be one of ...'), not Keras' 'Invalid `mode` argument'",
    "test_variance_scaling_invalid_distribution": "as above, for `distribution`",
    "test_variance_scaling_invalid_scale": "as above, for `scale`",
    "test_get_method_with_tensor": "kiz.get of an array gives a Constant, which can be saved; "
    "its error for a shape the array does not broadcast to is the zoo's, not Keras' "
    "'Expected `shape` to be'",
}
NOT_IN_THE_ZOO = {"test_stft_initializer": "STFT is a signal-processing kernel, not a scheme"}


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"keras_suite_{name}", KERAS_TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.initializers = ZOO_AS_KERAS
    if hasattr(module, "compute_fans"):
        module.compute_fans = kiz.compute_fans
    return module


def _cases():
    if not all((KERAS_TESTS / f"{name}.py").exists() for name in MODULES):
        return [pytest.param(None, None, marks=pytest.mark.skip(reason="Keras ships no tests"))]
    cases = []
    for name in MODULES:
        module = _load(name)
        for test_class in vars(module).values():
            if isinstance(test_class, type) and issubclass(test_class, unittest.TestCase):
                for method in unittest.TestLoader().getTestCaseNames(test_class):
                    marks = []
                    if method in ON_PURPOSE:
                        marks = [pytest.mark.xfail(reason=ON_PURPOSE[method], strict=True)]
                    if method in NOT_IN_THE_ZOO:
                        marks = [pytest.mark.skip(reason=NOT_IN_THE_ZOO[method])]
                    cases.append(pytest.param(test_class, method, id=method, marks=marks))
    return cases


@pytest.mark.parametrize("test_class, method", _cases())
def test_keras_initializer_test_passes_with_the_zoo(test_class, method):
    result = unittest.TestResult()
    test_class(method).run(result)
    problems = result.errors + result.failures
    assert not problems, problems[0][1]
    assert result.testsRun == 1 and not result.skipped


def test_the_readme_lists_every_deliberate_difference():
    readme = (pathlib.Path(__file__).resolve().parents[1] / "docs/reference/schemes.md").read_text()
    for method in ON_PURPOSE:
        assert f"`{method}`" in readme, method

"""Small offline datasets for the experiments: generated, or sklearn's bundled digits.

Nothing here downloads anything: ``blobs`` and ``spirals`` are generated with
NumPy from a seed, and ``digits`` is the 8x8 digits set that ships inside
scikit-learn (imported lazily, so the CLI demo needs only NumPy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_initzoo_cli.settings import DATASETS


@dataclass(frozen=True)
class Dataset:
    """A standardized classification task split into train and test parts."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Unit-variance inputs are what the variance-preserving schemes assume;
    # constant features (digits' blank corners) get std 1 to avoid 0/0.
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return (
        ((x_train - mean) / std).astype("float32"),
        ((x_test - mean) / std).astype("float32"),
    )


def _split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    rng: np.random.Generator,
    test_fraction: float = 0.25,
) -> Dataset:
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n_test = max(1, int(round(len(x) * test_fraction)))
    x_train, x_test = _standardize(x[n_test:], x[:n_test])
    return Dataset(
        name, x_train, y[n_test:].astype("int32"), x_test, y[:n_test].astype("int32"), n_classes
    )


def make_blobs(
    n_samples: int = 2048, n_features: int = 16, n_classes: int = 4, seed: int = 0
) -> Dataset:
    """Gaussian clusters, one per class, centres drawn at random in ``n_features`` dims.

    Centres and within-cluster noise are both ``N(0, 1)`` per feature.

    Args:
        n_samples: train and test examples together (default 2048; a quarter
            is the test part).
        n_features: the input dimension (default 16).
        n_classes: the number of clusters and classes (default 4).
        seed: the NumPy generator's seed (default 0).

    Returns:
        A standardized :class:`Dataset`.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    x = centres[y] + rng.normal(0.0, 1.0, size=(n_samples, n_features))
    return _split("blobs", x, y, n_classes, rng)


def make_spirals(
    n_samples: int = 2048, n_classes: int = 3, noise: float = 0.2, seed: int = 0
) -> Dataset:
    """Interleaved 2-D spirals: not linearly separable, so depth has something to do.

    Args:
        n_samples: train and test examples together (default 2048; a quarter
            is the test part).
        n_classes: the number of spiral arms and classes (default 3).
        noise: the noise's standard deviation, in tenths of the spirals'
            radius (default 0.2: 0.02).
        seed: the NumPy generator's seed (default 0).

    Returns:
        A standardized :class:`Dataset`.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n_samples)
    radius = rng.uniform(0.05, 1.0, size=n_samples)
    angle = 4.0 * radius + 2.0 * np.pi * y / n_classes
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += rng.normal(0.0, noise * 0.1, size=x.shape)
    return _split("spirals", x, y, n_classes, rng)


def load_digits(seed: int = 0) -> Dataset:
    """Scikit-learn's 1,797 bundled 8x8 digit images (no download), 10 classes."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as exc:  # scikit-learn is in the `examples` extra
        raise ImportError(
            "dataset 'digits' needs scikit-learn: pip install 'keras_initzoo[examples]'"
        ) from exc
    bunch = _load()
    return _split(
        "digits", bunch.data.astype("float64"), bunch.target, 10, np.random.default_rng(seed)
    )


def get_dataset(name: str, seed: int = 0, n_samples: int | None = None) -> Dataset:
    """Return dataset ``name`` (one of :data:`DATASETS`); ``n_samples`` caps its size.

    Args:
        name: ``"blobs"``, ``"spirals"`` or ``"digits"`` (needs scikit-learn).
        seed: the seed of the draw and the train/test split (default 0).
        n_samples: train and test examples together, for digits the cap on
            three quarters of it taken from the training part (default None:
            each dataset's own size).

    Returns:
        The :class:`Dataset`.

    Raises:
        ValueError: for another name.
    """
    if name == "blobs":
        data = make_blobs(seed=seed) if n_samples is None else make_blobs(n_samples, seed=seed)
    elif name == "spirals":
        data = make_spirals(seed=seed) if n_samples is None else make_spirals(n_samples, seed=seed)
    elif name == "digits":
        data = load_digits(seed=seed)
        if n_samples is not None:
            n_train = max(1, int(n_samples * 0.75))
            data = Dataset(
                data.name,
                data.x_train[:n_train],
                data.y_train[:n_train],
                data.x_test,
                data.y_test,
                data.n_classes,
            )
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return data

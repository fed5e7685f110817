"""Experiment engine shared by the ``initzoo`` CLI and the scripts in ``examples/``."""

from .data import DATASETS, Dataset, get_dataset
from .engine import (
    ACTIVATIONS,
    OPTIMIZERS,
    ExperimentConfig,
    LayerStats,
    Scheme,
    SchemeResult,
    build_mlp,
    depth_ratio,
    format_table,
    layer_stats,
    parse_schemes,
    resolve_scheme,
    run_comparison,
    scheme_label,
    train_scheme,
    write_scalar_series,
)

__all__ = [
    "ACTIVATIONS",
    "OPTIMIZERS",
    "Scheme",
    "scheme_label",
    "DATASETS",
    "Dataset",
    "ExperimentConfig",
    "LayerStats",
    "SchemeResult",
    "build_mlp",
    "depth_ratio",
    "format_table",
    "get_dataset",
    "layer_stats",
    "parse_schemes",
    "resolve_scheme",
    "run_comparison",
    "train_scheme",
    "write_scalar_series",
]

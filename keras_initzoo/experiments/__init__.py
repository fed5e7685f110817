"""Experiment engine shared by the ``initzoo`` CLI and the scripts in ``examples/``.

* :mod:`.config` — :class:`ExperimentConfig` (checked on creation) and scheme names;
* :mod:`.data` — the offline datasets;
* :mod:`.model` — the MLP, its loss and optimizer;
* :mod:`.seed` — :func:`set_seed`, Keras' seeding without TensorFlow on other backends;
* :mod:`.stats` — per-layer activation and gradient statistics at one moment;
* :mod:`.summaries` — TensorBoard writing besides GradientNormLogger;
* :mod:`.training` — :func:`train_scheme` and :func:`run_comparison`;
* :mod:`.table` — the comparison table the CLI prints;
* :mod:`.plotting`, :mod:`.scripts` — figures and flags for the examples.
"""

from .config import (
    ACTIVATIONS,
    DATASETS,
    OPTIMIZERS,
    ExperimentConfig,
    Scheme,
    parse_schemes,
    resolve_scheme,
    scheme_label,
    with_overrides,
)
from .data import Dataset, get_dataset
from .model import build_mlp, loss_fn, make_optimizer
from .seed import set_seed
from .stats import LayerStats, depth_ratio, layer_stats, per_layer_change
from .summaries import EpochScalars, fresh_run_dir, write_depth_profile, write_scalar_series
from .table import column_notes, format_table, reading
from .training import EpochProgress, SchemeResult, progress_bar, run_comparison, train_scheme

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "OPTIMIZERS",
    "Dataset",
    "EpochProgress",
    "EpochScalars",
    "ExperimentConfig",
    "LayerStats",
    "Scheme",
    "SchemeResult",
    "build_mlp",
    "column_notes",
    "depth_ratio",
    "format_table",
    "fresh_run_dir",
    "get_dataset",
    "layer_stats",
    "loss_fn",
    "make_optimizer",
    "per_layer_change",
    "parse_schemes",
    "progress_bar",
    "reading",
    "resolve_scheme",
    "run_comparison",
    "scheme_label",
    "set_seed",
    "train_scheme",
    "with_overrides",
    "write_depth_profile",
    "write_scalar_series",
]

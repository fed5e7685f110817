"""The TensorBoard custom-scalars layout written by GradientNormLogger.

It puts every ``grad_norm/<layer>`` tag (and ``grad_norm/global``) on one
multi-line chart, so depth-wise vanishing or exploding shows at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata

CATEGORY = "keras_initzoo: gradient norms"


def charts_for(*, weight_norms: bool, update_ratio: bool) -> list[tuple[str, str]]:
    """``(title, tag regex)`` for each multi-line chart of the layout."""
    charts = [("Gradient L2 norm per layer (grad_norm/*)", r"grad_norm/.*")]
    if weight_norms or update_ratio:
        charts.append(("Weight L2 norm per layer (weight_norm/*)", r"weight_norm/.*"))
    if update_ratio:
        charts.append(("Update / weight norm ratio per layer (update_ratio/*)", r"update_ratio/.*"))
    return charts


def layout_summary(charts: Sequence[tuple[str, str]]) -> summary_pb2.Summary:
    """The custom-scalars layout: one multi-line chart per ``(title, tag regex)``."""
    layout = layout_pb2.Layout(
        category=[
            layout_pb2.Category(
                title=CATEGORY,
                chart=[
                    layout_pb2.Chart(
                        title=title, multiline=layout_pb2.MultilineChartContent(tag=[regex])
                    )
                    for title, regex in charts
                ],
            )
        ]
    )
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=[layout.SerializeToString()]
    )
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=custom_scalar_metadata.CONFIG_SUMMARY_TAG,
        metadata=custom_scalar_metadata.create_summary_metadata(),
        tensor=tensor,
    )
    return summary

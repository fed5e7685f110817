"""The TensorBoard advice the command line prints: the documentation's one paragraph.

:data:`TENSORBOARD_ADVICE` is ``docs/snippets/tensorboard-advice.md`` word for
word (``tests/test_cli.py`` keeps the two equal), so the README, the
documentation and the command line say the same thing; :func:`plain` drops the
Markdown marks for the terminal.
"""

from __future__ import annotations

import re

TENSORBOARD_ADVICE = (
    "Run `tensorboard --logdir runs` (the folder your runs are written under; the demo's "
    "is `runs/demo`) and open http://localhost:6006; each `log_dir` is one run (in the "
    "demo, each scheme). **Images**, `grad_norm_by_depth`: one heatmap per run of the log10 "
    "gradient norm, first layer at the top, output at the bottom, logged steps left to "
    "right; one colour from top to bottom means the gradient is level across depth, rows "
    "fading to dark towards the top mean it vanishes, bright or red rows mean it explodes. "
    "**Time Series**: type `grad_norm/` in the filter for each layer's norm during training "
    "(`grad_norm/global` for the whole model). **Custom Scalars**: the global norm alone, "
    "then the layers in depth order, 8 to a chart."
)


def plain(markdown: str) -> str:
    """``markdown`` without its code and bold marks, for a terminal.

    Args:
        markdown: text with ``` `code` ``` and ``**bold**`` spans.

    Returns:
        The same words.

    >>> plain("**Images**, `grad_norm_by_depth`")
    'Images, grad_norm_by_depth'
    """
    return re.sub(r"\*\*|`", "", markdown)

"""MkDocs hook: Sphinx cross-reference roles in docstrings, shown as code.

The package's docstrings use Sphinx roles (``:func:`~keras_initzoo.gain```),
which Python-Markdown renders as ``:func:<code>~keras_initzoo.gain</code>``.
This keeps the code and drops the role; a leading ``~`` keeps the last
component only, as Sphinx shows it.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):<code>(~?)([^<]+)</code>")


def _shown(match: re.Match) -> str:
    target = match[2]
    return f"<code>{target.rsplit('.', 1)[-1] if match[1] else target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    """Rewrites each rendered Sphinx role into plain inline code."""
    return ROLE.sub(_shown, html)

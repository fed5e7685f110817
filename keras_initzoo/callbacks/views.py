"""What GradientNormLogger shows besides scalars: the depth heatmap and the custom-scalars layout.

Both come from names and values already on the host; nothing here touches the
training step.
"""

from __future__ import annotations

import functools
import math
import re
import struct
import zlib
from collections.abc import Sequence

import numpy as np
from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata

from keras_initzoo.callbacks.rows import RowLayout
from keras_initzoo.callbacks.writer import image_summary

DEPTH_TAG = "grad_norm_by_depth"
ACTIVATION_DEPTH_TAG = "act_rms_by_depth"
LINES_PER_CHART = 8  # consecutive groups per custom-scalars chart
MAX_COLUMNS = 400  # logged steps drawn; older ones are thinned evenly past this
CELL_MAX = 48  # pixels on a side of one cell at most: a 5-group heatmap is 240 pixels tall
LABEL_CHARS = 24  # a layer name longer than this is shown by its end

# Viridis at 9 stops (dark blue = small norm, yellow = large), interpolated.
_PALETTE = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    dtype=np.float64,
)
_NONFINITE = (255, 0, 0)  # a NaN or inf norm: red
_ZERO = (0, 0, 0)  # a zero norm (log10 = -inf): black
_INK = (40, 40, 40)  # text


def png(pixels: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """An RGB ``uint8`` array ``(height, width, 3)`` as PNG bytes; with ``palette``
    (``(n, 3)`` RGB, ``n <= 256``), a ``(height, width)`` array of its indices."""
    height, width = pixels.shape[:2]
    rows = np.empty((height, 1 + pixels[0].size), np.uint8)
    rows[:, 0] = 0  # each row's filter: none
    rows[:, 1:] = pixels.reshape(height, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    kind = 2 if palette is None else 3  # truecolour, or indexed
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, kind, 0, 0, 0))
    if palette is not None:
        header += chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    return (
        b"\x89PNG\r\n\x1a\n"
        + header
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))  # level 6: twice the time
        + chunk(b"IEND", b"")
    )


# The heatmap is drawn in the indices of one 256-colour palette: the heat scale
# in _SHADES steps (a step is below what the eye tells apart), red, black, and
# _GREYS shades of text from white to ink. An indexed PNG is a third of an RGB
# one's bytes to compress, and zlib is most of the time a heatmap takes.
_SHADES, _GREYS = 192, 62
_RED, _BLACK, _WHITE = _SHADES, _SHADES + 1, _SHADES + 2


def _indexed_palette() -> np.ndarray:
    position = np.linspace(0.0, len(_PALETTE) - 1, _SHADES)
    below = np.floor(position).astype(int).clip(0, len(_PALETTE) - 2)
    fraction = (position - below)[:, None]
    heat = _PALETTE[below] * (1 - fraction) + _PALETTE[below + 1] * fraction
    ink = np.linspace(0.0, 1.0, _GREYS)[:, None]
    greys = 255 * (1 - ink) + np.asarray(_INK) * ink
    return np.vstack([heat, [_NONFINITE, _ZERO], greys]).round().astype(np.uint8)


_INDEXED_PALETTE = _indexed_palette()


def shade(log_norms: np.ndarray, low: float, high: float) -> np.ndarray:
    """Log10 norms as indices into the heatmap's palette, from ``low`` to ``high``.

    Args:
        log_norms: log10 norms, any shape; NaN and inf get the non-finite
            colour (red), ``-inf`` (a zero norm) its own (black).
        low: the log10 norm at the scale's first colour; lower ones clip.
        high: the log10 norm at its last colour; higher ones clip.

    Returns:
        ``uint8`` indices, ``log_norms.shape``.

    >>> shade(np.array([0.0, 0.5, 1.0, np.nan, -np.inf]), 0.0, 1.0).tolist()
    [0, 96, 191, 192, 193]
    """
    finite = np.isfinite(log_norms)
    t = np.zeros(log_norms.shape)
    if high > low:
        t[finite] = (log_norms[finite] - low) / (high - low)
    index = np.round(np.clip(t, 0.0, 1.0) * (_SHADES - 1)).astype(np.uint8)
    index[~finite] = _RED
    index[np.isneginf(log_norms)] = _BLACK
    return index


def colour(log_norms: np.ndarray, low: float, high: float) -> np.ndarray:
    """RGB colours of log10 norms on the palette (viridis) from ``low`` to ``high``.

    Args:
        log_norms: log10 norms, any shape; NaN and inf get the non-finite
            colour, ``-inf`` (a zero norm) its own.
        low: the log10 norm at the palette's first colour; lower ones clip.
        high: the log10 norm at its last colour; higher ones clip.

    Returns:
        ``uint8`` RGB values, ``log_norms.shape + (3,)``.
    """
    return _INDEXED_PALETTE[shade(log_norms, low, high)]


def plain_number(value: float) -> str:
    """A norm as a person writes it, two significant digits: ``2.6``, ``0.0058``, ``3.1e-16``.

    Args:
        value: the number.

    Returns:
        Its text.

    >>> [plain_number(v) for v in (2.56, 0.00581, 10 ** -0.5, 3.1e-16)]
    ['2.6', '0.0058', '0.32', '3.1e-16']
    """
    return f"{value:.2g}"


def _log_range(logs: np.ndarray) -> tuple[float, float]:
    finite = logs[np.isfinite(logs)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


@functools.cache  # loading the font takes longer than drawing a heatmap
def _font(size: int = 12):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: scalable
    except (TypeError, OSError):
        return ImageFont.load_default()  # the built-in bitmap font


@functools.lru_cache(maxsize=2048)
def _glyphs(text: str, anchor: str = "la"):
    """``text`` rendered once as palette indices (white to ink), and its offset from the
    anchor point.

    A heatmap redraws the same layer names at every epoch and train end; rendering
    them is most of its cost, so each text is rendered once per process.
    """
    from PIL import Image, ImageDraw

    font = _font()
    x0, y0, x1, y1 = (int(np.floor(v)) for v in font.getbbox(text, anchor=anchor))
    mask = Image.new("L", (max(1, x1 - x0 + 1), max(1, y1 - y0 + 1)), 0)
    ImageDraw.Draw(mask).text((-x0, -y0), text, fill=255, font=font, anchor=anchor)
    # as palette indices: white where the mask is 0, ink where it is 255
    shades = _WHITE + (np.asarray(mask, np.uint16) * (_GREYS - 1) + 127) // 255
    return shades.astype(np.uint8), (x0, y0)


def _text_width(text: str) -> int:
    return _glyphs(text)[0].shape[1] if text else 0


def _paste(canvas: np.ndarray, glyphs: np.ndarray, x: int, y: int) -> None:
    """Text shades onto ``canvas`` (palette indices) at ``(x, y)``, clipped to it."""
    height, width = canvas.shape
    top, left = max(0, y), max(0, x)
    bottom, right = min(height, y + glyphs.shape[0]), min(width, x + glyphs.shape[1])
    if bottom <= top or right <= left:
        return
    piece = glyphs[top - y : bottom - y, left - x : right - x]
    region = canvas[top:bottom, left:right]
    region[...] = np.where(piece != _WHITE, piece, region)


def _write(canvas: np.ndarray, xy: tuple[int, int], text: str, anchor: str = "la") -> None:
    """Writes ``text`` on ``canvas`` as ``ImageDraw.text(xy, text, anchor=anchor)`` would."""
    glyphs, (dx, dy) = _glyphs(text, anchor)
    _paste(canvas, glyphs, int(xy[0]) + dx, int(xy[1]) + dy)


def _short(name: str, chars: int = LABEL_CHARS) -> str:
    return name if len(name) <= chars else "…" + name[-(chars - 1) :]


def _bar_ticks(low: float, high: float, height: int, line: int) -> list[tuple[int, float]]:
    """``(y, log10 norm)`` of the colour bar's labels: both ends, and the powers of ten
    between them that leave a line's room."""
    if high <= low:
        return [(0, high)]
    ends = [(0, high), (height - 1, low)]
    decades = np.arange(np.ceil(low), np.floor(high) + 1)
    step = max(1, int(np.ceil(len(decades) / 6)))  # at most about 6 labels
    ticks = list(ends)
    for decade in decades[::step]:
        y = int(round((high - decade) / (high - low) * (height - 1)))
        if all(abs(y - other) >= line for other, _ in ticks):
            ticks.append((y, float(decade)))
    return ticks


def _framed(
    heat: np.ndarray,
    cell_h: int,
    row_names: Sequence[str],
    steps: tuple[int, int],
    scale: tuple[float, float],
    title: str,
    note: str = "",
) -> np.ndarray:
    """``heat`` (palette indices, one block per cell) with its title, axis labels and
    colour bar, as palette indices."""
    font = _font()
    line = int(font.getbbox("Ag")[3]) + 4  # one line of text, with room between lines
    heat_h, heat_w = heat.shape[:2]
    every = max(1, int(np.ceil(line / cell_h)))  # rows per label, so labels do not overlap
    labelled = list(range(0, len(row_names), every))
    if labelled[-1] != len(row_names) - 1:  # the last layer is always named
        if len(labelled) > 1 and (len(row_names) - 1 - labelled[-1]) * cell_h < line:
            labelled.pop()
        labelled.append(len(row_names) - 1)
    names = {i: _short(row_names[i]) for i in labelled}
    low, high = scale
    ticks = _bar_ticks(low, high, heat_h, line)
    tick_text = {y: plain_number(10**value) for y, value in ticks}
    axis_label, step_label = "layer", "logged step"
    left = 4 + line + 4 + max(_text_width(n) for n in names.values()) + 6
    top = 4 + line + 4
    bar_x = left + heat_w + 10
    right = bar_x + 14 + 4 + max(_text_width(t) for t in tick_text.values()) + 4
    width = max(right, left + _text_width(title) + 4)
    height = top + heat_h + 4 + line * (3 if note else 2) + 4

    canvas = np.full((height, width), _WHITE, np.uint8)
    canvas[top : top + heat_h, left : left + heat_w] = heat
    bar = shade(np.linspace(high, low, heat_h)[:, None], low, high)
    canvas[top : top + heat_h, bar_x : bar_x + 14] = bar
    _write(canvas, (left, 4), title)
    for i, name in names.items():
        _write(canvas, (left - 6, top + i * cell_h + cell_h // 2), name, "rm")
    for y, text in tick_text.items():
        _write(canvas, (bar_x + 18, top + y), text, "lm")
    below = top + heat_h + 4
    first, last = (str(step) for step in steps)
    _write(canvas, (left, below), first)
    if last != first:
        _write(canvas, (left + heat_w, below), last, "ra")
    _write(canvas, (left + heat_w // 2, below + line), step_label, "ma")
    if note:
        _write(canvas, (left, below + 2 * line), note)
    # the vertical axis label, turned to read bottom to top
    label = np.rot90(_glyphs(axis_label)[0])
    _paste(canvas, label, 4, top + max(0, (heat_h - label.shape[0]) // 2))
    return canvas


class DepthHistory:
    """The logged per-group gradient norms kept on the host, drawn as a heatmap.

    Rows are groups in forward order (the first layer on top), columns logged
    steps (left to right); a colour bar on the right runs from the smallest
    norm (bottom) to the largest (top). Past :data:`MAX_COLUMNS` steps, older
    columns are thinned evenly. Memory is bounded: once ``2 * MAX_COLUMNS``
    columns are held, every other one is dropped and only every other row is
    kept from then on, so the kept steps stay evenly spaced over the whole run
    however long it is (and the latest row is always drawn).

    Args:
        groups: the group names, in forward order (the heatmap's rows).
        tag: the image's TensorBoard tag (default :data:`DEPTH_TAG`,
            ``"grad_norm_by_depth"``).
        quantity: what the norms are, for the caption (default
            ``"gradient norm"``).
    """

    def __init__(
        self, groups: Sequence[str], tag: str = DEPTH_TAG, quantity: str = "gradient norm"
    ) -> None:
        self.groups = tuple(groups)
        self.tag = tag
        self.quantity = quantity
        self._kept_steps: list[int] = []
        self._kept_norms: list[np.ndarray] = []
        self._latest: tuple[int, np.ndarray] | None = None
        self._added = 0  # rows added
        self._stride = 1  # one row in this many is kept

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last_step(self) -> int:
        return self.steps[-1]

    def add(self, step: int, norms: np.ndarray) -> None:
        norms = np.asarray(norms, dtype=np.float64)
        self._latest = (int(step), norms)
        self._added += 1
        if (self._added - 1) % self._stride:
            return
        self._kept_steps.append(int(step))
        self._kept_norms.append(norms)
        if len(self._kept_steps) >= 2 * MAX_COLUMNS:  # keep every other; take every 2nd on
            self._kept_steps, self._kept_norms = self._kept_steps[::2], self._kept_norms[::2]
            self._stride *= 2

    @property
    def steps(self) -> list[int]:
        """The steps held: evenly spaced over the run, and the latest."""
        if self._latest is None or self._kept_steps[-1] == self._latest[0]:
            return list(self._kept_steps)
        return [*self._kept_steps, self._latest[0]]

    @property
    def _norms(self) -> list[np.ndarray]:
        if self._latest is None or self._kept_steps[-1] == self._latest[0]:
            return list(self._kept_norms)
        return [*self._kept_norms, self._latest[1]]

    def matrix(self) -> tuple[np.ndarray, list[int]]:
        """``log10`` norms, ``(groups, steps)``, and the steps drawn."""
        keep = np.arange(len(self.steps))
        if len(keep) > MAX_COLUMNS:
            keep = np.unique(np.linspace(0, len(keep) - 1, MAX_COLUMNS).round().astype(int))
        norms = np.stack([self._norms[i] for i in keep], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(norms), [self.steps[i] for i in keep]

    def image(self) -> np.ndarray:
        """The heatmap as RGB pixels, with axis labels and a labelled colour bar.

        Each cell is a block of pixels, up to :data:`CELL_MAX` on a side (a
        5-group run draws 240 pixels tall); the layers are named on the left
        (as many as fit, the first and last always), the first and last
        logged steps below, and the colour bar on the right carries norms in
        plain numbers (``0.0058``, ``2.6``).

        Returns:
            ``uint8`` RGB pixels, ``(height, width, 3)``.
        """
        return _INDEXED_PALETTE[self._indexed()]

    def _indexed(self) -> np.ndarray:
        """:meth:`image` as indices into ``_INDEXED_PALETTE``."""
        logs, steps = self.matrix()
        low, high = _log_range(logs)
        rows, columns = logs.shape
        cell_h = max(1, min(CELL_MAX, 480 // rows))
        cell_w = max(1, min(CELL_MAX, 640 // columns))
        heat = np.repeat(np.repeat(shade(logs, low, high), cell_h, axis=0), cell_w, axis=1)
        notes = []
        if np.isnan(logs).any() or np.isposinf(logs).any():
            notes.append("red: NaN or inf")
        if np.isneginf(logs).any():
            notes.append("black: 0")
        return _framed(
            heat,
            cell_h,
            row_names=self.groups,
            steps=(steps[0], steps[-1]),
            scale=(low, high),
            title=f"{self.quantity} (colour: log scale)",
            note="   ".join(notes),
        )

    def description(self) -> str:
        """The caption TensorBoard shows under the heatmap: scale, rows and columns in words.

        Returns:
            The norms at each end of the colour scale in plain numbers, what
            red and black mean, which layer is on top and which steps are drawn.
        """
        logs, steps = self.matrix()
        finite = logs[np.isfinite(logs)]
        span = (
            f"from {plain_number(10 ** finite.min())} (dark blue) to "
            f"{plain_number(10 ** finite.max())} (yellow)"
            if finite.size
            else "no finite norm yet"
        )
        return (
            f"{self.quantity} per group on a log colour scale, {span}; red: NaN or inf, "
            f"black: 0. Rows: {len(self.groups)} groups in forward order, first layer "
            f"({self.groups[0]}) on top, last ({self.groups[-1]}) at the bottom. Columns: "
            f"logged steps {steps[0]} to {steps[-1]}. Right: the colour scale, largest on top."
        )

    def image_summary(self) -> summary_pb2.Summary:
        """The heatmap as an images-plugin summary (``[width, height, png]``)."""
        encoded = png(self._indexed(), _INDEXED_PALETTE)
        return image_summary(self.tag, encoded, self.description())


def _chunks(names: Sequence[str]) -> list[tuple[int, list[str]]]:
    """Consecutive runs of at most :data:`LINES_PER_CHART` names, with their start index."""
    return [
        (start, list(names[start : start + LINES_PER_CHART]))
        for start in range(0, len(names), LINES_PER_CHART)
    ]


def _exact(tag: str) -> str:
    return f"^{re.escape(tag)}$"


def charts(layout: RowLayout) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """``[(category, [(chart title, [tag regex, ...]), ...]), ...]`` in depth order."""
    groups = layout.groups
    n = len(groups)
    digits = int(math.log10(max(1, n))) + 1

    def by_depth(
        prefix: str, what: str, names: Sequence[str] = groups
    ) -> list[tuple[str, list[str]]]:
        n = len(names)
        return [
            (
                f"{what} {start + 1:0{digits}d}–{start + len(part):0{digits}d} of {n}: "
                f"{part[0]} … {part[-1]}",
                [_exact(f"{prefix}/{g}") for g in part],
            )
            for start, part in _chunks(names)
        ]

    totals = [_exact("grad_norm/global")]
    if layout.log_clipped:
        totals.append(_exact("grad_norm_clipped/global"))
    categories = [
        (
            "keras_initzoo: gradient norms by depth",
            [("global gradient norm", totals), *by_depth("grad_norm", "layers")],
        )
    ]
    if layout.log_clipped:
        categories.append(
            (
                "keras_initzoo: gradient norms after clipping",
                by_depth("grad_norm_clipped", "layers"),
            )
        )
    if layout.has("weights"):
        categories.append(("keras_initzoo: weight norms", by_depth("weight_norm", "layers")))
    if layout.update_ratio:
        categories.append(
            ("keras_initzoo: update / weight ratio", by_depth("update_ratio", "layers"))
        )
    if layout.optimizer_stats:
        categories.append(("keras_initzoo: update RMS", by_depth("update_rms", "layers")))
        if layout.adam:
            categories.append(
                ("keras_initzoo: Adam, epsilon share", by_depth("adam_eps_share", "layers"))
            )
    if layout.spectral:
        categories.append(
            (
                "keras_initzoo: spectral update size",
                by_depth("update_spectral", "kernels", layout.spectral),
            )
        )
    if layout.activation_stats:
        for prefix, what in (
            ("act_rms", "output RMS"),
            ("act_mean", "output mean"),
            ("act_dead", "dead units (fraction)"),
        ):
            categories.append((f"keras_initzoo: activations, {what}", by_depth(prefix, "layers")))
        if layout.saturating:
            categories.append(
                (
                    "keras_initzoo: activations, saturated (fraction)",
                    by_depth("act_saturated", "saturating layers", layout.saturating),
                )
            )
    if layout.output_logits:
        charts_of_logits = [
            ("mean log Z (z-loss's quantity)", [_exact("logits/log_z")]),
            ("largest |logit|", [_exact("logits/max_abs")]),
        ]
        categories.append(("keras_initzoo: output logits", charts_of_logits))
    for prefix, what in (("attn_logit_max", "largest logit"), ("attn_entropy", "entropy")):
        if layout.attention:
            categories.append(
                (
                    f"keras_initzoo: attention, {what}",
                    by_depth(prefix, "attention layers", layout.attention),
                )
            )
    return categories


def layout_summary(layout: RowLayout) -> summary_pb2.Summary:
    """The custom-scalars layout of :func:`charts`, as a summary to write once."""
    proto = layout_pb2.Layout(
        category=[
            layout_pb2.Category(
                title=title,
                chart=[
                    layout_pb2.Chart(
                        title=chart_title, multiline=layout_pb2.MultilineChartContent(tag=tags)
                    )
                    for chart_title, tags in chart_list
                ],
            )
            for title, chart_list in charts(layout)
        ]
    )
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=[proto.SerializeToString()]
    )
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=custom_scalar_metadata.CONFIG_SUMMARY_TAG,
        metadata=custom_scalar_metadata.create_summary_metadata(),
        tensor=tensor,
    )
    return summary

"""An image drawn with half-block characters: each cell is "▀" with the upper pixel as its
foreground colour and the lower pixel as its background, so one cell shows two pixels.

Plain text and truecolour styles, nothing else: it works over any SSH session, no graphics
protocol needed (where the terminal has fewer colours, Textual maps them down). The picture is
scaled to fit the widget keeping its aspect ratio, centred across, under (or over) a one-line
caption; the lines are built once per size and style and kept until either changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

UPPER_HALF = "▀"


def as_pil(image: Any) -> Image.Image:
    """A PIL image, or a uint8 CHW array or tensor with 1 or 3 channels, as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1 or 3, H, W) image, got shape {array.shape}")
    array = np.ascontiguousarray(array.transpose(1, 2, 0).astype(np.uint8, copy=False))
    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L").convert("RGB")
    return Image.fromarray(array, mode="RGB")


def fit(image_size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest (width, height) with the image's aspect ratio inside `box` (in pixels)."""
    (w, h), (bw, bh) = image_size, box
    if bw <= 0 or bh <= 0:
        return 0, 0
    scale = min(bw / w, bh / h)
    return max(1, min(bw, round(w * scale))), max(1, min(bh, round(h * scale)))


def _truecolor(rgb: int) -> Color:
    """0xRRGGBB as a Rich colour, built directly (Color.from_rgb costs ~3x more)."""
    triplet = ColorTriplet(rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF)
    return Color(f"#{rgb:06x}", ColorType.TRUECOLOR, None, triplet)


def halfblock_rows(pixels: np.ndarray, base: Style) -> list[list[Segment]]:
    """(H, W, 3) uint8 pixels -> ceil(H / 2) rows of W cells. An odd last pixel row is drawn
    over the base background. Runs of equal cells share one segment."""
    height, width, _ = pixels.shape
    packed = pixels.astype(np.int64)
    packed = (packed[..., 0] << 16) | (packed[..., 1] << 8) | packed[..., 2]  # 0xRRGGBB
    if height % 2:  # the odd last row's lower half: -1, the base background
        packed = np.concatenate([packed, np.full((1, width), -1, np.int64)])
    top, bottom = packed[0::2], packed[1::2]
    no_bottom = (bottom < 0).astype(np.int64) << 48
    cells = ((top << 24) | (bottom & 0xFFFFFF) | no_bottom).tolist()  # one int per cell
    colours: dict[int, Color] = {}
    styles: dict[int, Style] = {}

    def colour(rgb: int) -> Color:
        found = colours.get(rgb)
        if found is None:
            found = colours[rgb] = _truecolor(rgb)
        return found

    def style(cell: int) -> Style:
        found = styles.get(cell)
        if found is None:
            top, bottom = (cell >> 24) & 0xFFFFFF, cell & 0xFFFFFF
            bg = base.bgcolor if cell >> 48 else colour(bottom)
            # from_color skips Style's argument parsing: thousands of cells per picture
            found = styles[cell] = Style.from_color(colour(top), bg)
        return found

    rows = []
    for line in cells:
        row: list[Segment] = []
        start = 0
        for x in range(1, width + 1):
            if x == width or line[x] != line[start]:
                row.append(Segment(UPPER_HALF * (x - start), style(line[start])))
                start = x
        rows.append(row)
    return rows


class HalfBlockImage(Widget):
    """A picture and its caption. `update(image, caption)` sets either; None clears the image."""

    DEFAULT_CSS = """
    HalfBlockImage {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(
        self,
        image: Any = None,
        caption: str = "",
        caption_below: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.caption_below = caption_below
        self._image: Image.Image | None = None if image is None else as_pil(image)
        self._caption = caption
        self._lines: list[Strip] = []
        self._lines_key: tuple | None = None

    @property
    def image(self) -> Image.Image | None:
        return self._image

    @property
    def caption(self) -> str:
        return self._caption

    def update(self, image: Any = None, caption: str | None = None) -> None:
        self._image = None if image is None else as_pil(image)
        if caption is not None:
            self._caption = caption
        self._lines_key = None
        self.refresh()

    def on_resize(self) -> None:
        self.refresh()

    def picture_size(self) -> tuple[int, int]:
        """(width, height) in pixels the image is drawn at in the current size (0, 0: none)."""
        if self._image is None:
            return 0, 0
        width, height = self.size
        return fit(self._image.size, (width, 2 * max(0, height - 1)))

    def lines(self) -> list[Strip]:
        """One strip per row of the widget's current size (built once per size and style)."""
        width, height = self.size
        base = self.rich_style
        key = (width, height, base, self._caption, self.caption_below)
        if key != self._lines_key:
            self._lines, self._lines_key = self._build(width, height, base), key
        return self._lines

    def _build(self, width: int, height: int, base: Style) -> list[Strip]:
        if width <= 0 or height <= 0:
            return []
        blank = Strip.blank(width, base)
        caption = Strip([Segment(self._caption[:width].center(width), base + Style(bold=True))])
        picture: list[Strip] = []
        pw, ph = self.picture_size()
        if pw and ph:
            pixels = np.asarray(self._image.resize((pw, ph), Image.Resampling.LANCZOS))
            left, right = (width - pw) // 2, width - pw - (width - pw) // 2
            for row in halfblock_rows(pixels, base):
                segments = [Segment(" " * left, base)] if left else []
                segments += row
                if right:
                    segments.append(Segment(" " * right, base))
                picture.append(Strip(segments, width))
        # Caption and picture together at the top: side by side, panels then line up.
        block = picture + [caption] if self.caption_below else [caption] + picture
        return block + [blank] * (height - len(block))

    def render_line(self, y: int) -> Strip:
        lines = self.lines()
        return lines[y] if 0 <= y < len(lines) else Strip.blank(self.size.width, self.rich_style)

"""The augmentation preview: the half-block image widget, and the Preview view through Pilot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image
from rich.style import Style
from textual.app import App, ComposeResult

from tests.support.data import TINY_CLASSES
from tests.support.tui import drive, wait_for
from tui_trainer.data.preview import load_image
from tui_trainer.tui.app import make_app
from tui_trainer.tui.views.preview import panel_side
from tui_trainer.tui.widgets.halfblock import UPPER_HALF, HalfBlockImage, fit, halfblock_rows

RED, BLUE = (255, 0, 0), (0, 0, 255)
LABELS = ["original", "CS-HF", "H-RP", "B-GS-R"]


def red_over_blue(width: int = 20, height: int = 20, red_rows: int = 11) -> np.ndarray:
    """(H, W, 3): the first `red_rows` pixel rows red, the rest blue."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:red_rows] = RED
    pixels[red_rows:] = BLUE
    return pixels


def cells(strip) -> list[tuple[str, tuple | None, tuple | None]]:
    """One (character, fg rgb, bg rgb) per cell of a rendered line."""
    out = []
    for segment in strip:
        style = segment.style
        fg = style.color.get_truecolor() if style and style.color else None
        bg = style.bgcolor.get_truecolor() if style and style.bgcolor else None
        out += [(ch, fg and tuple(fg), bg and tuple(bg)) for ch in segment.text]
    return out


def render(
    image, size: tuple[int, int] = (20, 11), caption_below: bool = False
) -> tuple[tuple[int, int], list]:
    """Mount the widget at `size` (cells): the picture's size in pixels and the rendered cells."""
    width, height = size

    class ImageApp(App[None]):
        CSS = f"HalfBlockImage {{ width: {width}; height: {height}; }}"

        def compose(self) -> ComposeResult:
            yield HalfBlockImage(image, "caption", caption_below=caption_below)

    app, result = ImageApp(), {}

    async def scenario(pilot) -> None:
        await pilot.pause()
        widget = app.query_one(HalfBlockImage)
        result["size"], result["cells"] = widget.picture_size(), [cells(s) for s in widget.lines()]

    drive(app, scenario, size=(width + 4, height + 4))
    return result["size"], result["cells"]


# --- the widget ------------------------------------------------------------------------------


def test_fit_keeps_the_aspect_ratio():
    assert fit((224, 224), (40, 38)) == (38, 38)
    assert fit((200, 100), (40, 38)) == (40, 20)
    assert fit((100, 200), (40, 38)) == (19, 38)
    assert fit((224, 224), (0, 10)) == (0, 0)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_an_rgb_image_fills_its_cells_with_two_pixels_each(as_tensor):
    pixels = red_over_blue()
    image = pixels.transpose(2, 0, 1) if as_tensor else Image.fromarray(pixels)
    picture, lines = render(image, (20, 11))
    assert picture == (20, 20)  # 20 columns, 10 rows of two pixels
    assert len(lines) == 11 and all(len(line) == 20 for line in lines)
    assert "".join(ch for ch, _, _ in lines[0]).strip() == "caption"
    picture = lines[1:]
    assert sum(ch == UPPER_HALF for line in picture for ch, _, _ in line) == 20 * 10
    assert picture[0][3] == (UPPER_HALF, RED, RED)  # pixel rows 0 and 1
    assert picture[5][3] == (UPPER_HALF, RED, BLUE)  # pixel rows 10 (red) and 11 (blue)
    assert picture[9][3] == (UPPER_HALF, BLUE, BLUE)


def test_the_picture_is_scaled_to_fit_and_centred():
    picture, lines = render(Image.fromarray(red_over_blue(40, 40, 20)), (30, 11))
    assert picture == (20, 20)  # height-bound: 10 rows of two pixels
    picture = lines[1:]
    blocks = [i for i, (ch, _, _) in enumerate(picture[0]) if ch == UPPER_HALF]
    assert blocks == list(range(5, 25))
    assert picture[0][5][1] == RED and picture[9][5][2] == BLUE


def test_a_grayscale_image_renders_in_gray(tmp_path):
    gray = np.tile(np.linspace(0, 255, 20, dtype=np.uint8), (20, 1))
    for image in (Image.fromarray(gray, mode="L"), gray[None]):  # PIL "L" and (1, H, W)
        picture, lines = render(image, (20, 11))
        assert picture == (20, 20)
        for _, fg, bg in lines[5]:
            assert fg[0] == fg[1] == fg[2] and bg[0] == bg[1] == bg[2]
    # A grayscale JPEG comes out of load_image as three equal channels, and draws gray.
    path = tmp_path / "gray.jpg"
    Image.fromarray(np.tile(gray, (15, 15))).save(path)
    decoded = load_image(path)
    assert decoded.shape == (3, 224, 224)
    picture, lines = render(decoded, (24, 13))
    assert picture == (24, 24)
    shades = {fg for line in lines[1:] for _, fg, _ in line}
    assert len(shades) > 3 and all(r == g == b for r, g, b in shades)


def test_the_caption_can_go_below():
    picture, lines = render(Image.fromarray(red_over_blue()), (20, 12), caption_below=True)
    assert picture == (20, 20)
    assert lines[0][0] == (UPPER_HALF, RED, RED)
    assert "".join(ch for ch, _, _ in lines[10]).strip() == "caption"
    assert "".join(ch for ch, _, _ in lines[11]).strip() == ""


def test_no_image_draws_only_the_caption():
    picture, lines = render(None, (12, 5))
    assert picture == (0, 0)
    assert all(ch != UPPER_HALF for line in lines for ch, _, _ in line)


# --- the view ------------------------------------------------------------------------------


def test_the_panels_go_in_one_row_where_that_draws_them_bigger():
    # 80 x 20 cells: 19-pixel pictures in one row, 18 in a 2x2 grid; 80 x 40: 19 against 38
    assert panel_side(80, 20, 4, 1) == 19 and panel_side(80, 20, 2, 2) == 18
    assert panel_side(80, 40, 4, 1) == 19 and panel_side(80, 40, 2, 2) == 38


def synthetic_photo() -> Image.Image:
    """A fixed picture with colour, a shape and an asymmetry (so a flip shows)."""
    yy, xx = np.mgrid[:160, :160]
    pixels = np.stack([xx * 255 // 159, yy * 255 // 159, np.full_like(xx, 90)], -1)
    pixels[(yy - 60) ** 2 + (xx - 50) ** 2 < 30**2] = (250, 220, 30)
    pixels[110:140, 90:150] = (30, 30, 200)
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture
def photo_data(tmp_path):
    """A one-class dataset holding the synthetic photo: shapes/synthetic.png."""
    (tmp_path / "data" / "shapes").mkdir(parents=True)
    synthetic_photo().save(tmp_path / "data" / "shapes" / "synthetic.png")
    return tmp_path / "data"


def preview_view(app):
    return app.main.view("preview")


async def loaded(pilot, view, count: int = 1) -> None:
    """Wait until `count` requests have been answered (panels shown, or an error)."""
    await wait_for(
        pilot,
        lambda: (
            view._numbers >= count
            and (view._current is not None and view._current.request.number == view._numbers)
            or view.query_one("#preview-status").has_class("-error")
        ),
        what="the preview",
    )
    await pilot.pause()


def panel_lines(view) -> list[list]:
    return [[list(strip) for strip in panel.lines()] for panel in view.panels]


def test_a_path_shows_four_panels_and_r_draws_new_augmentations(photo_data, tmp_path):
    app = make_app(data_dir=photo_data, runs_dir=tmp_path / "runs")

    async def scenario(pilot) -> None:
        view = preview_view(app)
        view.seeds = itertools.count(1)
        app.preview_image("shapes/synthetic.png")  # relative to the class folders' parent
        await loaded(pilot, view)
        assert app.main.current == "preview"
        assert [p.caption for p in view.panels] == LABELS
        status = str(view.query_one("#preview-status").render())
        assert "shapes/synthetic.png" in status and "class shapes" in status
        before = panel_lines(view)
        assert all(p.picture_size() != (0, 0) for p in view.panels)

        await pilot.press("r")
        await loaded(pilot, view, 2)
        after = panel_lines(view)
        assert after[0] == before[0]  # the original stays
        assert all(after[i] != before[i] for i in (1, 2, 3))

        # Resizing redraws at the new size, in one row where that draws bigger pictures.
        grid, original = view.query_one("#preview-panels"), view.panels[0]
        for size, one_row in (((80, 24), True), ((80, 44), False)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert grid.has_class("-row") == one_row
            width, height = original.size
            assert len(original.lines()) == height
            assert max(original.picture_size()) in (width, 2 * (height - 1))

    drive(app, scenario)


def test_a_bad_path_shows_one_error_line_and_the_app_goes_on(photo_data, tmp_path):
    app = make_app(data_dir=photo_data, runs_dir=tmp_path / "runs")

    async def scenario(pilot) -> None:
        view = preview_view(app)
        await pilot.press("5")  # first shown: a random image from the one-image dataset
        await loaded(pilot, view)
        await pilot.press("o")
        field = view.query_one("#preview-path")
        assert app.focused is field
        field.value = "nowhere/missing.jpg"
        await pilot.press("enter")
        await loaded(pilot, view, 2)
        status = view.query_one("#preview-status")
        assert status.has_class("-error")
        assert "does not exist" in str(status.render()) and "\n" not in str(status.render())
        assert [p.caption for p in view.panels] == LABELS  # the last image stays up
        await pilot.press("n")  # still answering keys
        await loaded(pilot, view, 3)
        assert not status.has_class("-error") and app.is_running

    drive(app, scenario)


def test_n_loads_a_random_image_of_the_dataset(tiny_data, tmp_path):
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs")

    async def scenario(pilot) -> None:
        view = preview_view(app)
        await pilot.press("5")
        await loaded(pilot, view)
        await pilot.press("n")
        await loaded(pilot, view, 2)
        current = view._current
        assert current is not None and current.class_name in TINY_CLASSES
        assert current.shown_as.startswith(f"{current.class_name}/")
        assert [p.caption for p in view.panels] == LABELS

    drive(app, scenario)


def test_n_without_a_dataset_says_so(tmp_path):
    app = make_app(data_dir=tmp_path / "no-data", runs_dir=tmp_path / "runs")

    async def scenario(pilot) -> None:
        view = preview_view(app)
        await pilot.press("5")
        await loaded(pilot, view)
        status = view.query_one("#preview-status")
        assert status.has_class("-error")
        assert str(status.render()).startswith("no random image: data folder")

    drive(app, scenario)


def test_preview_snapshot(snap_compare, photo_data, tmp_path):
    app = make_app(data_dir=photo_data, runs_dir=tmp_path / "runs")

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        view = preview_view(app)
        view.seeds = itertools.count(0)
        app.preview_image("shapes/synthetic.png")
        await loaded(pilot, view)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_an_odd_last_pixel_row_is_drawn_over_the_background():
    pixels = red_over_blue(4, 3, 2)  # rows: red, red, blue
    rows = halfblock_rows(pixels, Style(bgcolor="#101010"))
    assert [cells(row) for row in rows] == [
        [(UPPER_HALF, RED, RED)] * 4,
        [(UPPER_HALF, BLUE, (16, 16, 16))] * 4,
    ]
    assert len(rows[0]) == 1  # four equal cells, one segment

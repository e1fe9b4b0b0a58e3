"""Per-class results in the console, on a fixture run whose test_results.json perclass made:
the run detail's worst classes and confused pairs, and the misclassified images screen."""

from __future__ import annotations

from PIL import Image
from textual.widgets import DataTable, Static

from tests.support.tui import (
    FIXTURE_IDS,
    cell_texts,
    drive,
    make_fixture_runs,
    notices,
    wait_for,
    write_fixture_results,
)
from tui_trainer.runs.results import confused_pairs, misclassified_images, worst_classes
from tui_trainer.tui.app import make_app
from tui_trainer.tui.widgets.results_table import ResultsTable


def fixture_app(tmp_path):
    """The fixture runs; the first has per-class results, its images on disk but the ant ones."""
    runs_dir = tmp_path / "runs"
    runs = make_fixture_runs(runs_dir)
    results = write_fixture_results(runs[0], tmp_path / "images")
    for path, true, _ in misclassified_images(results):
        if true != "ant":
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 24), (200, 40, 40)).save(path)
    return make_app(data_dir=tmp_path, runs_dir=runs_dir), results


async def open_detail(pilot, run_id: str) -> None:
    await pilot.press("3")
    table = pilot.app.screen.query_one(ResultsTable)
    table.move_cursor(row=table.get_row_index(run_id))
    await pilot.press("enter")
    assert type(pilot.app.screen).__name__ == "RunDetailScreen"


def test_run_detail_lists_worst_classes_and_confused_pairs(tmp_path):
    app, results = fixture_app(tmp_path)

    async def scenario(pilot):
        await open_detail(pilot, FIXTURE_IDS[0])
        screen = app.screen
        worst = cell_texts(screen.query_one("#worst-classes", DataTable))
        assert worst == [
            (c.name, f"{c.correct}/{c.total}", f"{c.accuracy:.3f}")
            for c in worst_classes(results, 10)
        ]
        assert len(worst) == 10 and worst[0] == ("crocodile", "2/5", "0.400")
        pairs = cell_texts(screen.query_one("#confused-pairs", DataTable))
        assert pairs == [(t, p, str(n)) for t, p, n in confused_pairs(results, 10)]
        assert len(pairs) == 10 and pairs[0] == ("crocodile", "crocodile_head", "3")
        title = str(screen.query_one("#perclass-title", Static).render())
        assert "12 classes · 17 of 60 test images misclassified" in title
        assert screen.query_one("#perclass-tables").display

    drive(app, scenario)


def test_misclassified_images_filter_and_open(tmp_path):
    app, results = fixture_app(tmp_path)
    images = misclassified_images(results)

    async def scenario(pilot):
        await open_detail(pilot, FIXTURE_IDS[0])
        await pilot.press("m")
        assert type(app.screen).__name__ == "MisclassifiedScreen"
        table = app.screen.query_one("#misclassified-table", DataTable)
        expected = [
            (m["path"], m["true"], m["pred"], "missing" if m["true"] == "ant" else "")
            for m in results["misclassified"]
        ]
        assert cell_texts(table) == expected and len(expected) == 17
        status = str(app.screen.query_one("#misclassified-status", Static).render())
        assert "17 of 60 test images misclassified" in status and "2 files missing" in status

        # filter by class: true or predicted
        await pilot.press("slash", *"crocodile")
        assert cell_texts(table) == [r for r in expected if "crocodile" in r[1] + r[2]]
        assert cell_texts(table)[0][:3] == ("ant/image_0001.jpg", "ant", "crocodile")
        await pilot.press("escape")
        assert app.focused is table

        # enter: a missing file says so; an image on disk goes to the preview, or is named
        await pilot.press("enter")
        assert "is missing" in notices(app)[-1]
        await pilot.press("down", "enter")
        croc = next(p for p, true, _ in images if true == "crocodile")
        assert type(app.screen).__name__ == "PreviewScreen" and app.screen.path == croc
        view = app.screen.query_one("#preview-over")
        await wait_for(pilot, lambda: view.panels[0].caption == "original", what="the preview")
        await pilot.press("escape")  # back to the list, where we were
        assert type(app.screen).__name__ == "MisclassifiedScreen"
        assert table.cursor_row == 1

        await pilot.press("escape")
        assert type(app.screen).__name__ == "RunDetailScreen"

    drive(app, scenario)


def test_runs_without_per_class_results_say_so(tmp_path):
    app, _ = fixture_app(tmp_path)

    async def scenario(pilot):
        for run_id, note in (
            (FIXTURE_IDS[1], "none: the run predates them"),
            (FIXTURE_IDS[2], "none: only completed runs store them (this one interrupted)"),
        ):
            await open_detail(pilot, run_id)
            screen = app.screen
            assert note in str(screen.query_one("#perclass-title", Static).render())
            assert not screen.query_one("#perclass-tables").display
            await pilot.press("m")
            assert app.screen is screen
            assert notices(app)[-1].startswith(f"{run_id} has no per-class test results")
            await pilot.press("escape")

    drive(app, scenario)

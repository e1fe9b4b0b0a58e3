"""The Studies view (the report's tables, one tab each) and sweeps run from the Launch view."""

from __future__ import annotations

import threading

from tests.support.tui import (
    FULL_SCRATCH,
    ScriptedEngine,
    cell_texts,
    drive,
    study_runs,
    wait_for,
    write_fixture_run,
)
from tui_trainer.runs.store import list_runs
from tui_trainer.studies import sweep_file, sweeps
from tui_trainer.studies.report import build_report
from tui_trainer.tui.app import make_app
from tui_trainer.tui.screens.run_detail import RunDetailScreen
from tui_trainer.tui.widgets.study_table import StudyTable
from tui_trainer.tui.widgets.sweep_panel import SweepPanel, parse_sweep_overrides


async def open_tab(pilot, key: str) -> StudyTable:
    view = pilot.app.main.view("studies")
    view.query_one("#study-tabs").active = f"tab-{key}"
    await pilot.pause()
    return view.query_one(f"#study-{key}", StudyTable)


def test_tables_show_the_report_and_cells_open_their_run(tmp_path):
    runs_dir = tmp_path / "runs"
    made = study_runs(runs_dir)
    app = make_app(data_dir=tmp_path / "none", runs_dir=runs_dir)
    report = {t.spec.key: t for t in build_report(runs_dir).tables}

    async def scenario(pilot):
        await pilot.press("4")
        table = await open_tab(pilot, "scratch")
        rows = cell_texts(table)
        # the full-protocol row carries its numbers and run; the quick run is left out
        expected = report["scratch"].rows[3].cells
        assert rows[3][4:7] == (f"{expected[0].value:.3f}", "0.491", made["scratch"].id)
        assert rows[2][4:6] == ("—", "—")
        table.focus()
        table.cursor_coordinate = (3, 5)  # TEST_ACC of lr 0.05
        await pilot.press("enter")
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run.id == made["scratch"].id
        await pilot.press("escape")
        table.cursor_coordinate = (2, 5)  # an empty cell: nothing to open
        await pilot.press("enter")
        assert not isinstance(app.screen, RunDetailScreen)

        # backbones: the two result columns of one row come from two runs
        table = await open_tab(pilot, "backbones")
        assert cell_texts(table)[1][:3] == ("Resnet18", "0.871", "0.912")
        for column, run in ((1, made["r18"]), (2, made["r18-freeze"])):
            table.cursor_coordinate = (1, column)
            await pilot.press("enter")
            assert app.screen.run.id == run.id
            await pilot.press("escape")

    drive(app, scenario)


def test_paper_and_protocol_toggles(tmp_path):
    runs_dir = tmp_path / "runs"
    made = study_runs(runs_dir)
    app = make_app(data_dir=tmp_path / "none", runs_dir=runs_dir)

    async def scenario(pilot):
        await pilot.press("4")
        table = await open_tab(pilot, "scratch")
        table.focus()
        await pilot.press("p")
        header = [str(c.label) for c in table.ordered_columns]
        assert header[4:8] == ["Best val", "Paper", "Test acc", "Paper"]
        # Table 1's printed numbers for lr 0.05 / 30 / 20 / 0.1, 0.47 and 0.49, and where our
        # run lies against them
        assert [cell_texts(table)[3][i] for i in (5, 7)] == ["0.47 (below)", "0.49 (above)"]
        await pilot.press("p", "a")
        rows = cell_texts(table)
        assert rows[2][5:8] == ("0.333", made["quick"].id, "classes=5 image_size=64 resize=72")
        assert rows[3][7] == "full"
        status = str(app.main.view("studies").query_one("#studies-status").render())
        assert status.startswith("4 of 12 cells")

    drive(app, scenario)


def test_a_run_finishing_elsewhere_fills_its_cell(tmp_path):
    runs_dir = tmp_path / "runs"
    app = make_app(data_dir=tmp_path / "none", runs_dir=runs_dir)

    async def scenario(pilot):
        await pilot.press("4")
        table = await open_tab(pilot, "scratch")
        assert cell_texts(table)[3][5] == "—"
        write_fixture_run(
            runs_dir, "20240302-1-scratch", "scratch", FULL_SCRATCH, 1, "completed", 0.4
        )
        app.runs_changed.publish(None)
        await pilot.pause()
        assert cell_texts(table)[3][5] == "0.400"

    drive(app, scenario)


SWEEP_SET = "classes=3 image_size=64 resize=72"


def sweep_plan(name: str = "scratch-lr-sweep"):
    return sweep_file.load_sweep(name, parse_sweep_overrides(SWEEP_SET))


async def pick_sweep(pilot, name: str, overrides: str = SWEEP_SET) -> SweepPanel:
    app = pilot.app
    await wait_for(pilot, lambda: app.data_checked, what="the data check")
    app.main.view("launch").pick(f"sweep:{name}")
    await pilot.pause()
    panel = app.main.view("launch").sweep_panel
    panel.query_one("#sweep-set").value = overrides
    await pilot.pause()
    return panel


def test_a_sweep_queues_only_what_is_left_and_tags_its_runs(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    plan = sweep_plan()
    done = plan.members[0]  # finished before: by the CLI, say
    ScriptedEngine(epochs=1, steps=2)(
        done.config,
        preset=done.preset,
        overrides=done.overrides,
        data_dir=tiny_data,
        runs_dir=runs_dir,
        on_event=None,
        stop=threading.Event(),
    )
    engine = ScriptedEngine(epochs=1, steps=2)
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir, engine=engine)

    async def scenario(pilot):
        panel = await pick_sweep(pilot, "scratch-lr-sweep")
        states = [row.status for row in panel.states]
        assert states == ["completed"] + ["pending"] * 5
        assert panel.counts_line().startswith("6 members · 1 done · 0 failed · 5 to run")
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: len(engine.calls) == 5 and app.current_job is None)
        await pilot.press("1")
        await pilot.pause()
        assert [row.status for row in panel.states] == ["completed"] * 6
        await pilot.press("ctrl+s")  # all done: nothing more to queue
        await pilot.pause()
        assert len(engine.calls) == 5 and app.current_job is None

    drive(app, scenario)
    # the members ran in order (run ids of one second sort by name: the engine's calls tell
    # the order), each tagged with the sweep as `tui-trainer sweep` tags them
    assert [overrides for _, overrides in engine.calls] == [m.overrides for m in plan.members[1:]]
    tags = {run.meta().get("sweep_member"): run.meta().get("sweep") for run in list_runs(runs_dir)}
    assert tags == {None: None} | {m.name: "scratch-lr-sweep" for m in plan.members[1:]}
    assert sweeps.pending_members(sweeps.member_states(plan, runs_dir)) == []


def test_queued_members_show_as_queued_while_one_trains(tiny_data, tmp_path):
    engine = ScriptedEngine(epochs=1, steps=4, hold_after=1)
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine)

    async def scenario(pilot):
        panel = await pick_sweep(pilot, "finetune-lr-sweep")

        def states() -> list[str]:
            return [row.status for row in panel.states]

        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: engine.started.is_set(), what="the first member")
        await pilot.press("1")
        # the panel rereads the folder in a worker: wait for it rather than one pause
        await wait_for(pilot, lambda: states() == ["training", "queued", "queued"], what="queued")
        assert "#2 finetune-lr-sweep/" in app.queue.jobs[0].label
        await pilot.press("ctrl+s")  # nothing is queued twice
        await pilot.pause()
        assert len(app.queue) == 2
        app.queue.clear()
        app.stop_current()
        await wait_for(pilot, lambda: app.current_job is None, what="the stop")
        # stopped: it reruns next time; the two taken off the queue are remaining again
        expected = ["interrupted", "pending", "pending"]
        await wait_for(pilot, lambda: states() == expected, what="the states after the stop")
        assert len(panel.to_run()) == 3

    drive(app, scenario)


def test_bad_sweep_overrides_refuse_start(tiny_data, tmp_path):
    engine = ScriptedEngine(epochs=1, steps=2)
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine)

    async def scenario(pilot):
        panel = await pick_sweep(pilot, "scratch-lr-sweep", "classes=three")
        assert panel.has_class("-invalid") and panel.sweep is None
        assert "classes" in str(panel.query_one("#sweep-error").render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert engine.calls == [] and app.current_job is None
        panel.query_one("#sweep-set").value = "classes=3"
        await pilot.pause()
        assert not panel.has_class("-invalid") and len(panel.to_run()) == 6

    drive(app, scenario)
    assert list_runs(tmp_path / "runs") == []


def test_the_panel_names_members_by_the_overrides_and_blames_a_typo_on_the_field(tmp_path):
    app = make_app(data_dir=tmp_path / "none", runs_dir=tmp_path / "runs")

    async def scenario(pilot):
        panel = await pick_sweep(pilot, "scratch-lr-sweep", "epochs=2")
        await wait_for(pilot, lambda: panel.query_one("#sweep-members").row_count == 5)
        names = [row[1] for row in cell_texts(panel.query_one("#sweep-members"))]
        assert "scratch-lr0.05-e30-s20-g0.1-epochs=2" in names
        assert all(name.endswith("-epochs=2") for name in names)
        assert "1 duplicate config" in panel.counts_line()  # e30 and e40 are one run now
        panel.query_one("#sweep-set").value = "epoch=2"
        await pilot.pause()
        error = str(panel.query_one("#sweep-error").render())
        assert error.startswith("override field: unknown config key 'epoch'")
        assert ".toml" not in error and "member" not in error
        panel.query_one("#sweep-set").value = "epochs"
        await pilot.pause()
        error = str(panel.query_one("#sweep-error").render())
        assert error == "override field: 'epochs' is not key=value: write e.g. epochs=2"

    drive(app, scenario)


def test_studies_key_s_shows_the_sweep_behind_the_tab(tmp_path):
    app = make_app(data_dir=tmp_path / "none", runs_dir=tmp_path / "runs")

    async def scenario(pilot):
        await pilot.press("4")
        await open_tab(pilot, "finetune")
        app.main.view("studies").current_table.focus()
        await pilot.press("s")
        await pilot.pause()
        assert app.main.current == "launch"
        launch = app.main.view("launch")
        assert launch.sweep_panel.sweep.name == "finetune-lr-sweep"
        await pilot.press("4")
        await open_tab(pilot, "policies")
        await pilot.press("s")
        await pilot.pause()
        assert launch.sweep_panel.sweep.name == "report-study"

    drive(app, scenario)

"""Resume from the console: `r` on a run that stopped short of its end (Runs, run detail, Watch
after a stop) and "Resume RUN" in the command palette; the Start dialog asks where (this console
or detached); a completed run is refused in one line, as `run --resume` refuses it.

The resume itself (`runs.launch.resume_run`) is tests/reliability/test_resume.py's business and
the pty journey's (tests/pty/test_console_journey.py): here a stand-in with its signature runs
the same refusal (`check_resumable`) and finishes the run's folder."""

from __future__ import annotations

from textual.widgets import OptionList, Static

from tests.support.tui import ScriptedEngine, drive, make_fixture_runs, notices, wait_for
from tui_trainer.events import RunEnded
from tui_trainer.runs.detached import resume_command
from tui_trainer.runs.resume import check_resumable
from tui_trainer.runs.store import Run, find_run
from tui_trainer.runs.writer import RunWriter
from tui_trainer.tui.app import make_app
from tui_trainer.tui.screens.run_detail import RunDetailScreen
from tui_trainer.tui.screens.start_choice import StartChoiceScreen

INTERRUPTED = "20240101-120000-finetune"  # 2 of 4 epochs (tests/support/tui.py)
COMPLETED = "20240101-100000-scratch"


class ScriptedResume:
    """Stands in for `runs.launch.resume_run`: its refusal, then the run ends completed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, run_id, *, runs_dir, device=None, on_event=None, stop=None):
        self.calls.append((run_id, device))
        run = find_run(runs_dir, run_id)
        check_resumable(run)
        writer = RunWriter(run)
        writer.summary = run.summary()
        ended = RunEnded(
            run_id=run.id,
            status="completed",
            summary={"epochs_done": 4, "test_acc": 0.5},
            message="",
        )
        writer(ended)
        if on_event is not None:
            on_event(ended)
        return run, ended


def console(tmp_path, tiny_data, engine=None):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir, engine=engine or ScriptedEngine())
    app.resumer = ScriptedResume()
    return app


def bound(screen, action: str) -> bool:
    """`action` is in the key bar's bindings now (shown and enabled)."""
    return any(b.action == action for _, b, *_ in screen.active_bindings.values())


def palette_names(app) -> list[str]:
    return [command.title for command in app.get_system_commands(app.screen)]


async def filter_runs(pilot, text: str) -> None:
    await pilot.press("3", "slash", *text, "enter")
    await pilot.pause()


def test_r_in_runs_resumes_an_interrupted_run_in_this_console(tmp_path, tiny_data):
    app = console(tmp_path, tiny_data)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        await filter_runs(pilot, "finetune")
        assert bound(app.screen, "resume")  # in the key bar
        assert f"Resume {INTERRUPTED}" in palette_names(app)  # and in the command palette
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, StartChoiceScreen) and dialog.verb == "Resume"
        said = str(dialog.query_one("#start-choice-changes", Static).render())
        assert "interrupted after 2 of 4 epochs" in said
        await pilot.press("enter")  # in this console
        await wait_for(pilot, lambda: app.resumer.calls and app.current_job is None, what="resume")
        assert app.resumer.calls == [(INTERRUPTED, None)]
        assert Run(app.runs_dir / INTERRUPTED).status() == "completed"
        assert app.main.current == "watch" and app.live.status == "completed"

    drive(app, scenario)


def test_a_completed_run_is_refused_in_one_line(tmp_path, tiny_data):
    app = console(tmp_path, tiny_data)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        await filter_runs(pilot, "0.412")  # its test accuracy
        assert app.main.view("runs").table.current_id == COMPLETED
        assert not any(name.startswith("Resume") for name in palette_names(app))
        await pilot.press("r")
        assert not isinstance(app.screen, StartChoiceScreen) and app.resumer.calls == []
        assert any("is completed: it has nothing left to train" in n for n in notices(app))

        await pilot.press("enter")  # its detail offers no Resume either
        assert isinstance(app.screen, RunDetailScreen) and not bound(app.screen, "resume")

    drive(app, scenario)


def test_r_on_a_run_detail_resumes_it_detached(tmp_path, tiny_data):
    app = console(tmp_path, tiny_data)
    detached: list[str] = []
    app.detached.start_resume = detached.append

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.push_screen(RunDetailScreen(Run(app.runs_dir / INTERRUPTED)))
        await pilot.pause()
        assert bound(app.screen, "resume")
        assert f"Resume {INTERRUPTED}" in palette_names(app)
        await pilot.press("r", "down", "enter")  # detached
        await pilot.pause()
        assert detached == [INTERRUPTED] and app.resumer.calls == []

    drive(app, scenario)


def test_watch_offers_resume_once_its_run_has_stopped(tmp_path, tiny_data):
    engine = ScriptedEngine(epochs=2, steps=4, hold_after=2)
    app = console(tmp_path, tiny_data, engine)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.screen.query_one("#epochs").value = "2"
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: engine.started.is_set(), what="the run")
        watch = app.main.view("watch")
        assert app.main.current == "watch" and not bound(app.screen, "resume")  # training
        app.stop_current()
        await wait_for(pilot, lambda: app.current_job is None, what="the stop")
        await pilot.pause()
        assert app.live.status == "interrupted" and bound(app.screen, "resume")
        run_id = app.live.run_id
        await pilot.press("r")
        assert isinstance(app.screen, StartChoiceScreen)
        options = app.screen.query_one(OptionList)
        assert options.get_option_at_index(options.highlighted).id == "in-console"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.resumer.calls and app.current_job is None, what="resume")
        assert app.resumer.calls == [(run_id, None)] and watch.view.status == "completed"
        assert not bound(app.screen, "resume")

    drive(app, scenario)


def test_the_detached_resume_is_run_resume_with_the_consoles_device(tmp_path):
    command = resume_command("20240101-x", runs_dir=tmp_path / "runs", device="cpu")
    args = command[command.index("-m") + 1 :]
    assert args[:4] == ["tui_trainer", "run", "--resume", "20240101-x"]
    assert args[args.index("--device") + 1] == "cpu"
    assert args[args.index("--runs-dir") + 1] == str((tmp_path / "runs").resolve())

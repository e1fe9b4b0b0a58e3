"""The watch view's model: progress, ETA and the evaluating phase, from events and folders."""

from __future__ import annotations

from tui_trainer.events import Epoch, RunEnded, RunStarted, Step
from tui_trainer.runs.store import Run
from tui_trainer.tui.live import RunView, format_seconds


def started(epochs: int = 4, steps: int = 10) -> RunView:
    view = RunView(label="#1 scratch")
    view.apply(
        RunStarted(
            run_id="r",
            config={},
            device="cpu",
            precision="fp32",
            num_classes=5,
            num_train=80,
            num_val=80,
            num_test=80,
            steps_per_epoch=steps,
            epochs=epochs,
        )
    )
    return view


def steps(epoch: int, upto: int, per_epoch: int = 10) -> list[Step]:
    first = (epoch - 1) * per_epoch
    return [
        Step(
            run_id="r",
            epoch=epoch,
            step=i,
            steps_per_epoch=per_epoch,
            global_step=first + i,
            loss=1.0,
            lr=0.05,
        )
        for i in range(1, upto + 1)
    ]


def test_progress_eta_and_evaluation_from_events():
    view = started()
    assert view.status == "running" and view.fraction() == 0 and view.eta_seconds() is None
    view.apply_steps(steps(1, 5))
    assert view.fraction() == 5 / 40 and not view.evaluating
    view.started_at -= 10.0  # 5 steps took 10 s: 35 to go at the same rate
    assert round(view.eta_seconds()) == 70
    view.apply_steps(steps(1, 10)[5:])
    assert view.evaluating  # every step of epoch 1 done, its Epoch event not yet
    view.apply(
        Epoch(
            run_id="r",
            epoch=1,
            epochs=4,
            train_loss=1.0,
            train_acc=0.4,
            val_loss=1.1,
            val_acc=0.35,
            lr=0.05,
            seconds=30.0,
            is_best=True,
        )
    )
    assert not view.evaluating and view.best_val_acc == 0.35
    view.apply_steps(steps(2, 5))
    assert view.eta_seconds() == 30.0 * 2.5  # whole epochs (with evaluation) once one is timed
    view.apply(
        RunEnded(run_id="r", status="interrupted", summary={"epochs_done": 1}, message="stopped")
    )
    assert view.finished and view.eta_seconds() is None and "ended interrupted" in view.log[-1]


def test_a_folder_without_a_finished_epoch_has_no_epoch_length_yet(tmp_path):
    run = Run(tmp_path / "r")
    run.path.mkdir()
    run.write_summary({"status": "completed", "epochs": 2})
    (run.path / "config.json").write_text('{"config": {"epochs": 2}, "preset": "scratch"}')
    for step in steps(1, 7):
        run.append_metric(
            {
                "kind": "step",
                "epoch": 1,
                "step": step.step,
                "global_step": step.global_step,
                "loss": 1.0,
                "lr": 0.05,
            }
        )
    view = RunView.from_run(run)
    assert view.steps_per_epoch == 0 and view.step == 7 and not view.evaluating
    assert view.fraction() == 1.0  # completed says so, whatever the rows


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 5, 65, 3725)] == ["-", "5s", "1m05s", "1h02m"]

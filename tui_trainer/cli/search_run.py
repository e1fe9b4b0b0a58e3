"""What `tune` does once its options are checked: the plan, a worker here, N worker children,
a Slurm script, the results, the seeds confirmation (studies/search*.py do the work)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tui_trainer.cli.common import err, out
from tui_trainer.cli.listen import follow, stopping
from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.status import EXIT_DONE, EXIT_ELSEWHERE, EXIT_INTERRUPTED, EXIT_UNDONE
from tui_trainer.studies import search
from tui_trainer.studies.search_spec import SearchSpec, trial_epochs

POLL_S = 2.0  # how often a --parallel parent looks at the study


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def print_plan(spec: SearchSpec, base, overrides, runs_dir: Path, storage: str | None) -> None:
    """The space and the budget (trials x epochs), and how far the study already is."""
    config = base.with_overrides(overrides)
    _say(f"search {spec.name}: base {spec.base}, {spec.trials} trials, {spec.objective}")
    settings = ", ".join(f"{k}={v}" for k, v in spec.pruner_settings.items())
    _say(f"sampler {spec.sampler} (seed {spec.seed}); pruner {spec.pruner} {settings}".rstrip())
    _say("space:")
    for param in spec.space:
        _say(f"  {param.describe()}")
    epochs = trial_epochs(spec, config)
    _say(
        f"budget: at most {spec.trials} trials x {epochs} epochs = {spec.trials * epochs} "
        "epochs; pruned trials stop early"
    )
    where = storage or search.journal_path(runs_dir, spec.name)
    if not _has_study(spec, runs_dir, storage):
        _say(f"study: {where} (new)")
        return
    from tui_trainer.studies.search_view import study_view

    view = study_view(runs_dir, spec, storage)
    done = view.budget.trials_finished if view else 0
    _say(f"study: {where}: {done} of {spec.trials} trials finished")


def print_results(spec, runs_dir: Path, storage, fmt: str, out_file: Path | None) -> int:
    from tui_trainer.studies.search_view import RESULT_FORMATS, render_results, study_view

    if fmt not in RESULT_FORMATS:
        raise UserError(f"--results {fmt!r}: choose one of {', '.join(RESULT_FORMATS)}")
    view = study_view(runs_dir, spec, storage) if _has_study(spec, runs_dir, storage) else None
    if view is None:
        raise UserError(f"search {spec.name} has no trials in {runs_dir}: run `tune {spec.name}`")
    text = render_results(view, fmt)
    if out_file is None:
        sys.stdout.write(text)
    else:
        out_file.write_text(text)
        _say(f"results written to {out_file}")
    return EXIT_DONE


def _has_study(spec, runs_dir: Path, storage) -> bool:
    return storage is not None or search.journal_path(runs_dir, spec.name).exists()


def run_here(spec, base, overrides, runs_dir: Path, data_dir: Path, storage) -> int:
    """This process as one worker until the study has its trials; the results after."""
    from tui_trainer.studies.parallel import stop_with_parent

    worker = search.Worker(spec, base, overrides, runs_dir, data_dir, storage)
    hint = f"continue the search with `tui-trainer tune {spec.name}`"
    ends = []
    with stopping(hint) as stop, stop_with_parent(stop):
        while not stop.is_set():
            job = search.next_job(worker)
            if job is None:
                break
            _say(_job_label(spec, job))
            _, ended = follow(
                lambda on_event, job=job: search.train_job(worker, job, on_event, stop),
                worker.runs_dir,
            )
            ends.append(ended.status)
            if ended.status in (RunStatus.INTERRUPTED, RunStatus.FAILED):
                break
    interrupted = stop.is_set() or RunStatus.INTERRUPTED in ends
    if interrupted:
        err.print(hint, markup=False, highlight=False)
        return EXIT_INTERRUPTED
    return _finish(spec, runs_dir, storage, failed=RunStatus.FAILED in ends)


def _job_label(spec, job) -> str:
    params = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in job.params.items()
    )
    resuming = f" (resuming run {job.resume.id})" if job.resume is not None else ""
    return f"search {spec.name} trial {job.trial.number}{resuming}: {params}"


def _finish(spec, runs_dir: Path, storage, failed: bool) -> int:
    from tui_trainer.studies.search_view import render_results, study_view

    view = study_view(runs_dir, spec, storage)
    if view is not None:
        sys.stdout.write(render_results(view, "md"))
    if failed:
        return EXIT_UNDONE
    finished = view.budget.trials_finished if view else 0
    return EXIT_DONE if finished >= spec.trials else EXIT_ELSEWHERE


def child_command(spec, runs_dir: Path, data_dir: Path, options: list[str], threads) -> list[str]:
    command = [sys.executable, "-m", "tui_trainer", "tune", spec.name]
    command += ["--runs-dir", str(runs_dir.absolute()), "--data", str(data_dir.absolute())]
    command += options
    if threads is not None:
        command += ["--set", f"threads={threads}"]
    return command


def run_children(  # noqa: PLR0913 - the worker's options, and what the parent reads
    spec, n: int, runs_dir: Path, data_dir: Path, options, set_, storage
) -> int:
    """N `tune NAME` workers as children (logs: <runs>/.sweep-logs/NAME/worker-K.log); the
    parent shows the study's progress and stops them on Ctrl-C."""
    import signal

    from tui_trainer.inside import file_name
    from tui_trainer.runs.detached import LOG_ENV
    from tui_trainer.studies.parallel import LOGS_DIR, PARENT_ENV, spawn_child
    from tui_trainer.studies.slots import sets_threads
    from tui_trainer.train.host import cpu_threads

    if n < 1:
        raise UserError(f"--parallel {n}: give at least 1")
    threads = None if sets_threads(set_) else max(1, cpu_threads(0) // n)
    command = child_command(spec, runs_dir, data_dir, options, threads)
    env = {**os.environ, PARENT_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"}
    logs = runs_dir / LOGS_DIR / file_name(spec.name, "search")
    children = []
    for k in range(1, n + 1):
        log = logs / f"worker-{k}.log"
        children.append(spawn_child(command, {**env, LOG_ENV: str(log)}, log))
    _say(f"search {spec.name}: {n} workers; logs in {logs}")
    shown = None
    with stopping(f"continue the search with `tui-trainer tune {spec.name}`") as stop:
        while any(c.poll() is None for c in children):
            shown = _progress(spec, runs_dir, storage, shown)
            if stop.is_set():
                for c in children:
                    if c.poll() is None:
                        c.send_signal(signal.SIGTERM)
                for c in children:
                    c.wait()
                return EXIT_INTERRUPTED
            time.sleep(POLL_S)
    failed = any(c.returncode == EXIT_UNDONE for c in children)
    return _finish(spec, runs_dir, storage, failed=failed)


def _progress(spec, runs_dir: Path, storage, shown: str | None) -> str | None:
    """One line each time the study's counts change: finished, pruned, running."""
    from tui_trainer.studies.search_view import study_view

    if not _has_study(spec, runs_dir, storage):
        return shown
    view = study_view(runs_dir, spec, storage)
    if view is None:
        return shown
    states = [t.state for t in view.trials]
    line = (
        f"{spec.name}: {view.budget.trials_finished} of {spec.trials} trials finished "
        f"({states.count('pruned')} pruned), {states.count('running')} training"
    )
    if line != shown:
        _say(line)
    return line


def write_slurm(spec, opts, runs_dir: Path, data_dir: Path, options, workers: int) -> None:
    """An sbatch script: an array of `workers` tasks, each a `tune NAME` worker of the study."""
    from tui_trainer.cli import slurm_command
    from tui_trainer.files import write_text_atomic
    from tui_trainer.studies import slurm

    slurm_command.check_paths(spec.name, runs_dir, data_dir)
    workers_at = tuple(range(1, workers + 1))
    job = slurm_command.make_job(
        spec.name, workers, workers_at, opts, runs_dir, data_dir, options, search=True
    )
    text = slurm.sbatch_script(job)
    job.log_dir.mkdir(exist_ok=True)
    if opts.out is None:
        sys.stdout.write(text)
        return
    write_text_atomic(opts.out, text)
    opts.out.chmod(0o755)
    _say(f"wrote {opts.out}: {workers} worker tasks; submit it with `sbatch {opts.out}`")


def confirm(spec, base, overrides, runs_dir: Path, data_dir: Path, storage, seeds: int) -> int:
    """The best trial's config over `seeds` seeds, as a seeds sweep; mean ± std after."""
    from tui_trainer.cli.sweeps import _run_members
    from tui_trainer.studies import search_confirm
    from tui_trainer.studies.search_view import study_view
    from tui_trainer.studies.sweeps import member_states, pending_members, sweep_exit_code

    view = study_view(runs_dir, spec, storage) if _has_study(spec, runs_dir, storage) else None
    params = search_confirm.best_params(view)
    merged = {**overrides, **params}
    plan = search_confirm.confirm_sweep(spec, base.with_overrides(merged), merged, seeds)
    todo = pending_members(member_states(plan, runs_dir))
    _say(f"confirm {spec.name}: the best trial ({view.best.number}) over seeds {plan.seeds}")
    with stopping(f"continue with `tui-trainer tune {spec.name} --confirm`") as stop:
        interrupted = _run_members(plan, todo, data_dir, runs_dir, stop, time.time())
    states = member_states(plan, runs_dir)
    for key in ("max_val_acc", "test_acc"):
        _say(f"{key}: {search_confirm.spread_line(states, key)}")
    return sweep_exit_code(states, interrupted)

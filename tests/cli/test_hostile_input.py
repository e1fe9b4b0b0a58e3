"""Hostile input, round 3: what one user of a shared runs folder can plant for the next, readers
that met a folder they cannot parse, numbers without bounds. Bad input gets one line and exit 2
with nothing written; a reader skips what it cannot parse; nothing is written outside the runs
folder."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.support.runs import invoke
from tests.support.sweeps import sweep_presets
from tui_trainer.inside import PlantedPath, file_name, open_append
from tui_trainer.studies import parallel, sweep_file
from tui_trainer.studies.slots import plan_slots

TWO = 'base = "tiny"\n[grid]\nlr = [0.01, 0.02]\n'
NAMED = """base = "tiny"
[[runs]]
name = "../../../escaped"
[[runs]]
name = "/tmp/abs"
lr = 0.02
"""


@pytest.fixture
def presets(tmp_path, monkeypatch):
    return sweep_presets(tmp_path / "presets", monkeypatch, {"tiny-two": TWO, "named": NAMED})


def lines_of(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def tree(folder: Path) -> list[str]:
    """Every entry under `folder`, links not followed: what a command left on disk."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- a shared runs folder turned against its users ----------------------------------------------


def test_a_member_named_with_dots_or_an_absolute_path_keeps_its_log_inside_the_runs_folder(
    presets, tmp_path
):
    runs = tmp_path / "runs"
    sweep = sweep_file.load_sweep("named", directory=presets)
    for member in sweep.members:
        log = parallel.log_path(runs, "named", member)
        assert log.resolve().parent == (runs / ".sweep-logs" / "named").resolve(), log
        assert log.name.endswith(".log") and "/" not in log.name


def test_a_file_name_is_one_short_component_and_distinct_names_stay_distinct():
    assert file_name("lr0.05-seed0") == "lr0.05-seed0"  # an ordinary name is kept as it is
    odd = ["..", "../..", "/etc/passwd", "a/b", "a-b\n", "x" * 1000, "é", ""]
    names = [file_name(label) for label in odd]
    for name in names:
        assert "/" not in name and name not in ("", ".", "..") and not name.startswith(".")
        assert len(name.encode()) <= 120 and name.isascii() and name.isprintable()
    assert len(set(names)) == len(names)
    assert file_name("a/b") != file_name("a-b")


def test_a_symlink_planted_as_a_member_log_is_refused_and_its_target_untouched(
    presets, tmp_path, tiny_data
):
    runs, target = tmp_path / "runs", tmp_path / "victim.txt"
    target.write_text("precious\n")
    sweep = sweep_file.load_sweep("tiny-two", directory=presets)
    log = parallel.log_path(runs, "tiny-two", sweep.members[0])
    log.parent.mkdir(parents=True)
    log.symlink_to(target)
    before = tree(runs)
    result = invoke(
        "sweep", "tiny-two", "--parallel", "2", "--data", tiny_data, "--runs-dir", runs
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    (line,) = lines_of(result.output)
    assert line.startswith(f"error: {log} is a link or not a plain file")
    assert target.read_text() == "precious\n"
    assert tree(runs) == before


def test_a_symlinked_logs_folder_is_refused_before_any_child_starts(presets, tmp_path, tiny_data):
    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    runs.mkdir()
    elsewhere.mkdir()
    (runs / ".sweep-logs").symlink_to(elsewhere)
    result = invoke(
        "sweep", "tiny-two", "--parallel", "2", "--data", tiny_data, "--runs-dir", runs
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    (line,) = lines_of(result.output)
    assert "is a link or not a plain folder" in line
    assert tree(elsewhere) == []


def test_spawning_a_child_never_writes_through_a_link_or_blocks_on_a_fifo(tmp_path):
    runs, target = tmp_path / "runs", tmp_path / "victim.txt"
    target.write_text("precious\n")
    logs = runs / ".sweep-logs" / "s"
    logs.mkdir(parents=True)
    (logs / "a.log").symlink_to(target)
    os.mkfifo(logs / "b.log")
    spawned = []
    for name in ("a.log", "b.log"):
        done = threading.Event()

        def attempt(path=logs / name, done=done):
            try:
                parallel.spawn_child(["true"], dict(os.environ), path)
                spawned.append(path)
            except PlantedPath:
                pass
            done.set()

        threading.Thread(target=attempt, daemon=True).start()
        assert done.wait(10), f"opening {name} blocked"
    assert spawned == []
    assert target.read_text() == "precious\n"


def test_open_append_refuses_a_link_even_to_a_file_inside_the_folder(tmp_path):
    (tmp_path / "real.log").write_text("")
    (tmp_path / "link.log").symlink_to(tmp_path / "real.log")
    with pytest.raises(PlantedPath):
        open_append(tmp_path / "link.log")
    os.close(open_append(tmp_path / "new.log"))
    assert (tmp_path / "new.log").is_file()


def test_a_detached_start_refuses_a_planted_detached_folder_link(tmp_path):
    from tui_trainer.runs import detached

    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    runs.mkdir()
    elsewhere.mkdir()
    (runs / detached.DETACHED_DIR).symlink_to(elsewhere)
    with pytest.raises(OSError, match="is a link or not a plain folder"):
        detached.spawn(["true"], runs, "x")
    assert tree(elsewhere) == []


def test_a_claim_refuses_a_planted_claims_folder_link(tmp_path):
    from tui_trainer.errors import UserError
    from tui_trainer.runs import claims

    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    runs.mkdir()
    elsewhere.mkdir()
    (runs / claims.CLAIMS_DIR).symlink_to(elsewhere)
    with pytest.raises(UserError, match="is a link or not a plain folder"):
        claims.take_claim(runs, "key", sweep="s", member="m")
    assert tree(elsewhere) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--partition", "gpu\ntouch /tmp/owned"], "--partition 'gpu\\ntouch /tmp/owned': give"),
        (["--partition", "gpu --wrap=x"], "--partition 'gpu --wrap=x': give a partition"),
        (["--time", "04:00:00\n"], "--time '04:00:00\\n': give HH:MM:SS"),
        (["--mem", "8G\n"], "--mem '8G\\n': give a size like 8G"),
    ],
)
def test_slurm_options_cannot_put_a_line_into_the_script(
    presets, tmp_path, tiny_data, options, message
):
    runs, script = tmp_path / "runs", tmp_path / "s.sbatch"
    result = invoke(
        "sweep", "tiny-two", "--slurm", "--data", tiny_data, "--runs-dir", runs, "--out", script,
        *options,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    (line,) = lines_of(result.output)
    assert line.startswith(f"error: {message}")
    assert not script.exists() and tree(runs) == []


def test_a_runs_folder_with_a_newline_cannot_put_a_line_into_the_script(
    presets, tmp_path, tiny_data
):
    runs, script = tmp_path / "runs\ntouch owned", tmp_path / "s.sbatch"
    result = invoke(
        "sweep", "tiny-two", "--slurm", "--data", tiny_data, "--runs-dir", runs, "--out", script
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    (line,) = lines_of(result.output)
    assert line.startswith("error: --runs-dir ") and "which an sbatch script cannot hold" in line
    assert not script.exists() and not runs.exists()


# --- one bad folder must not stop a reader ------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def _append(name: str, data: bytes):
    def write(folder: Path) -> None:
        with open(folder / name, "ab") as fh:
            fh.write(data)

    return write


def _replace(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def _fifo(name: str):
    def plant(folder: Path) -> None:
        (folder / name).unlink(missing_ok=True)
        os.mkfifo(folder / name)

    return plant


BAD_FOLDERS = {
    "config is a string": _replace("config.json", '{"config": "x", "preset": "tiny"}'),
    "config nested too deep": _replace("config.json", '{"config": ' + DEEP + "}"),
    "summary seconds is text": _replace(
        "summary.json", '{"status": "completed", "seconds": "x", "test_acc": "y"}'
    ),
    "summary nested too deep": _replace("summary.json", DEEP),
    "epoch row of non-numbers": _append(
        "metrics.jsonl", b'{"kind": "epoch", "epoch": "x", "val_acc": "y", "seconds": "s"}\n'
    ),
    "metrics not UTF-8": _append("metrics.jsonl", b'\xff\xfe{"kind": "epoch"}\n'),
    "metrics nested too deep": _append("metrics.jsonl", DEEP.encode() + b"\n"),
    "test results of another shape": _replace(
        "test_results.json", '{"classes": "x", "per_class": 3, "confusion": "y"}'
    ),
    "system.jsonl not UTF-8": _append("system.jsonl", b'\xff{"t": 1}\n'),
    "summary is a FIFO": _fifo("summary.json"),
    "metrics is a FIFO": _fifo("metrics.jsonl"),
}


@pytest.fixture
def shared_runs(tmp_path, monkeypatch):
    from tests.support.seed_runs import write_seed_run

    sweep_presets(
        tmp_path / "presets", monkeypatch, {"one": 'base = "tiny"\n[[runs]]\nepochs = 4\n'}
    )
    runs = tmp_path / "runs"
    for run_id, seed in (("20240201-100000-good", 42), ("20240201-110000-bad", 0)):
        write_seed_run(
            runs, run_id, "tiny", {"epochs": 4, "seed": seed}, "fp32", [0.1, 0.2, 0.3, 0.4],
            "completed", 0.38,
        )  # fmt: skip
    return runs


def _invoke_within(seconds: float, *args):
    """The command in a thread: a read that blocks (a FIFO) fails the test instead of hanging."""
    box = []
    thread = threading.Thread(target=lambda: box.append(invoke(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"{' '.join(map(str, args))} still running after {seconds} s"
    return box[0]


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_one_bad_run_folder_stops_no_reader(shared_runs, case):
    BAD_FOLDERS[case](shared_runs / "20240201-110000-bad")
    for command in (
        ["runs"],
        ["report"],
        ["show", "good"],
        ["show", "bad"],
        ["sweep", "one", "--dry-run"],
    ):
        result = _invoke_within(60, *command, "--runs-dir", shared_runs)
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        assert not crashed, f"{command}: {result.exception!r}\n{result.output}"
        assert result.exit_code == 0, f"{command}: {result.output}"
    listing = invoke("runs", "--json", "--runs-dir", shared_runs)
    assert "20240201-100000-good" in listing.stdout
    if case.startswith("config"):  # a folder that cannot say what it ran: skipped, said once
        assert "20240201-110000-bad" not in listing.stdout
        assert listing.stderr.count("warning: skipped 1 run folder(s)") == 1, listing.stderr
        assert "20240201-110000-bad" in listing.stderr


# --- numbers without bounds ---------------------------------------------------------------------


def _grid(n: int, m: int) -> str:
    lrs = ", ".join(str(0.001 * (i + 1)) for i in range(n))
    return f'base = "tiny"\n[grid]\nlr = [{lrs}]\nseed = [{", ".join(map(str, range(m)))}]\n'


@pytest.mark.parametrize(
    ("sweep", "options", "message"),
    [
        ("million", [], "million.toml: 1000000 members (1 [[runs]], [grid] 1000 lr x 1000 seed"),
        ("tiny-two", ["--seeds", "1000000"], "--seeds 1000000: give at most 1000"),
        ("tiny-two", ["--seeds", "1000000000"], "--seeds 1000000000: give at most 1000"),
        ("many-seeds", [], "many-seeds.toml: 1001 seeds: at most 1000"),
        ("three", ["--seeds", "1000"], "three.toml: 3000 members once repeated over seeds"),
        ("tiny-two", ["--parallel", "99999999999999999999"], "--parallel 99999999999999999999"),
    ],
)
def test_a_sweep_past_its_bounds_is_refused_in_one_line_and_writes_nothing(
    presets, tmp_path, tiny_data, sweep, options, message
):
    (presets / "million.toml").write_text(_grid(1000, 1000))
    (presets / "three.toml").write_text('base = "tiny"\n[grid]\nlr = [0.01, 0.02, 0.03]\n')
    seeds = ", ".join(map(str, range(1001)))
    (presets / "many-seeds.toml").write_text(f'base = "tiny"\nseeds = [{seeds}]\n')
    runs = tmp_path / "runs"
    result = _invoke_within(
        120, "sweep", sweep, "--dry-run", "--data", tiny_data, "--runs-dir", runs, *options
    )
    assert result.exit_code == 2, result.output
    (line,) = lines_of(result.output)
    assert line.startswith("error: ") and message in line, line
    assert not runs.exists()


def test_parallel_slots_are_bounded_before_any_list_is_built():
    from tui_trainer.errors import UserError

    with pytest.raises(UserError, match="give at most 256"):
        plan_slots(10**20, None, device_count=0, cores=2)
    assert len(plan_slots(256, None, device_count=0, cores=2)) == 256


# --- data read as it is ---------------------------------------------------------------------------


def _split_data(tmp: Path, train: bytes, test: bytes = b"circle/img_01.jpg\n") -> Path:
    from tests.support.data import make_tiny_dataset

    make_tiny_dataset(tmp / "split" / "101_ObjectCategories", per_class=4)
    (tmp / "split" / "train.txt").write_bytes(train)
    (tmp / "split" / "test.txt").write_bytes(test)
    return tmp / "split"


FOUR = b"circle/img_00.jpg\nsquare/img_00.jpg\nstripes/img_00.jpg\n"
DATA_CASES = {
    "duplicate line": (FOUR + b"circle/img_00.jpg\n", b"", "train.txt:4 names circle/img_00.jpg"),
    "train and test": (FOUR, b"circle/img_00.jpg\n", "circle/img_00.jpg is in both"),
    "class of another case": (FOUR + b"Circle/img_02.jpg\n", b"", "did you mean 'circle'?"),
    "class typo": (FOUR + b"cirlce/img_02.jpg\n", b"", "whose class 'cirlce' is not a folder"),
    "absolute path": (FOUR + b"/etc/passwd\n", b"", "train.txt:4 names /etc/passwd, which leads"),
}


def _refused(command: list[str], fragment: str, runs: Path) -> None:
    result = _invoke_within(120, *command)
    lines = lines_of(result.output)
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert tree(runs) == []


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_a_split_file_that_would_change_what_is_trained_is_refused_by_run_and_data_check(
    tmp_path, case
):
    from tests.support.processes import small_set_options

    train, test_extra, fragment = DATA_CASES[case]
    data = _split_data(tmp_path, train, b"circle/img_01.jpg\nsquare/img_01.jpg\n" + test_extra)
    runs = tmp_path / "runs"
    run = ["run", "scratch", "--data", data, "--runs-dir", runs, *small_set_options(epochs=1)]
    _refused(run, fragment, runs)
    _refused(["data", "check", "--data", data], fragment, runs)


def test_a_split_file_with_a_bom_keeps_its_first_image(tmp_path):
    from tui_trainer.config import RunConfig
    from tui_trainer.data.layout import find_layout, make_splits

    names = [f"{c}/img_{i:02d}.jpg\n" for c in ("circle", "square") for i in (0, 1)]
    lines = "".join(names).encode()
    data = _split_data(tmp_path, b"\xef\xbb\xbf" + lines, b"circle/img_02.jpg\nsquare/img_02.jpg\n")
    splits = make_splits(find_layout(data), RunConfig(classes=2))
    trained = {rel for rel, _ in splits.train + splits.val}
    assert "circle/img_00.jpg" in trained and len(trained) == 4


@pytest.mark.parametrize(
    ("classes", "fragment"),
    [
        (1, "1 class to train on in"),
        (5000, "classes=5000 but"),
    ],
)
def test_a_class_count_that_cannot_train_a_classifier_is_refused(
    tiny_data, tmp_path, classes, fragment
):
    from tests.support.processes import small_set_options

    runs = tmp_path / "runs"
    options = small_set_options(epochs=1, classes=classes)
    _refused(["run", "scratch", "--data", tiny_data, "--runs-dir", runs, *options], fragment, runs)


def test_a_dataset_of_one_class_is_refused(tmp_path):
    from tests.support.data import make_tiny_dataset
    from tests.support.processes import small_set_options

    data = make_tiny_dataset(tmp_path / "one", per_class=4)
    for name in ("square", "stripes"):
        for f in (data / name).iterdir():
            f.unlink()
        (data / name).rmdir()
    runs = tmp_path / "runs"
    command = ["run", "scratch", "--data", data, "--runs-dir", runs, *small_set_options(epochs=1)]
    _refused(command, "a classifier needs at least 2", runs)


def test_a_fifo_named_like_an_image_is_not_an_image(tmp_path):
    from tests.support.data import make_tiny_dataset

    data = make_tiny_dataset(tmp_path / "fifo", per_class=4)
    os.mkfifo(data / "circle" / "img_fifo.jpg")
    result = _invoke_within(120, "data", "check", "--data", data)
    assert result.exit_code == 1, result.output  # the tiny set's one corrupt JPEG
    assert "unreadable:   1" in result.output and "img_fifo" not in result.output


# --- kills ----------------------------------------------------------------------------------------


def test_a_sweep_starting_a_member_again_removes_the_dead_runs_half_written_checkpoint(
    presets, tmp_path
):
    import time

    from tui_trainer.files import write_json_atomic
    from tui_trainer.studies.members import Claimed, claim_member

    sweep = sweep_file.load_sweep("tiny-two", directory=presets)
    member, runs = sweep.members[0], tmp_path / "runs"
    folder = runs / "20240201-100000-tiny"
    folder.mkdir(parents=True)
    write_json_atomic(folder / "config.json", {"config": member.config.to_dict(), "preset": "tiny"})
    write_json_atomic(folder / "summary.json", {"status": "interrupted", "epochs_done": 1})
    orphan = folder / ".last.pt.0123456789ab.tmp"  # killed while epoch 1's last.pt was written
    orphan.write_bytes(b"\0" * 4096)
    taken = claim_member(sweep, member, runs, since=time.time())
    assert isinstance(taken, Claimed)
    with taken:
        assert taken.resume is None  # nothing to continue from: a fresh run
        assert not orphan.exists()
        assert (folder / "config.json").exists()  # the dead run itself stays, as history


# --- output ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "args", "expected", "code"),
    [
        ("0", ["--help"], "Usage: ", 0),
        ("0", ["run", "--bogus"], "No such option: --bogus", 2),
        ("1", ["run", "--bogus"], "No such option: --bogus", 2),
        ("0", ["run", "nope"], "error: unknown preset 'nope'", 2),
    ],
)
def test_an_unusable_columns_still_prints_help_and_errors(tmp_path, columns, args, expected, code):
    import subprocess
    import sys

    from tests.support.processes import subprocess_env

    result = subprocess.run(
        [sys.executable, "-m", "tui_trainer", *args],
        env=subprocess_env(COLUMNS=columns, TUI_TRAINER_RUNS=str(tmp_path / "runs")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert expected in result.stdout + result.stderr
    assert not (tmp_path / "runs").exists()


# --- found this round: options and environment past their limits ------------------------------


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("runs --runs-dir {tmp}/missing", "runs folder {tmp}/missing does not exist"),
        ("runs --runs-dir {tmp}/file.txt", "runs folder {tmp}/file.txt does not exist"),
        ("lr-find tiny --steps 1000000000000", "--steps 1000000000000 must be <= 10000"),
        ("run tiny --set epochs=99999999999999999999", "epochs=99999999999999999999 must be <="),
        ("run tiny --set batch_size=99999999999999999999", "batch_size=99999999999999999999 m"),
        ("run tiny --set eval_batch_size=2000000", "eval_batch_size=2000000 must be <= 1048576"),
        ("run tiny --set step_size=99999999999999999999", "step_size=99999999999999999999 mu"),
        ("run tiny --set diverge_patience=10000000", "diverge_patience=10000000 must be <="),
        ("sweep tiny-two --slurm --max-running 99999999999999999999", "give at most 100000"),
        ("sweep tiny-two --slurm --cpus-per-task 99999999999999999999", "give at most 100000"),
    ],
)
def test_an_option_past_its_limit_is_refused_in_one_line(
    presets, tmp_path, tiny_data, command, message
):
    import shlex

    (tmp_path / "file.txt").write_text("not a folder\n")
    args = [*shlex.split(command.format(tmp=tmp_path)), "--data", tiny_data]
    if args[0] == "runs":
        args = args[:-2]
    else:
        args += ["--runs-dir", tmp_path / "runs"]
    result = _invoke_within(120, *args)
    assert result.exit_code == 2, result.output
    (line,) = lines_of(result.output)
    assert line.startswith("error: ") and message.format(tmp=tmp_path) in line, line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", [["presets"], ["run", "scratch"], ["sweeps"]])
def test_a_presets_folder_from_the_environment_that_is_not_one_is_named(
    tmp_path, monkeypatch, command
):
    monkeypatch.setenv("TUI_TRAINER_PRESETS", str(tmp_path / "nowhere"))
    result = invoke(*command)
    assert result.exit_code == 2, result.output
    (line,) = lines_of(result.output)
    assert line == (
        f"error: TUI_TRAINER_PRESETS={tmp_path / 'nowhere'} is not a folder: point it at a "
        "folder of presets or unset it"
    )


def test_a_member_name_too_long_for_a_file_system_still_makes_a_run_folder(tmp_path):
    from tui_trainer.runs.store import create_run

    run = create_run(tmp_path / "runs", {"config": {}}, "tiny", name="lr=0.05-" * 100 + "é" * 80)
    assert run.path.is_dir() and len(run.id.encode()) <= 140
    assert run.id.split("-", 2)[2].startswith("lr-0.05-lr-0.05")

"""Every bad input gets one line, `error: <the problem>: <the fix>`, exit code 2, and leaves the
runs folder as it was. One case per line: the command ({tiny} the tiny image set, {tmp} this
test's temporary folder), what to set up first, and a piece of the message."""

from __future__ import annotations

import pickle
import shlex
import urllib.error
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tests.support.data import make_tiny_dataset
from tests.support.processes import small_config, small_set_options
from tui_trainer.cli.app import app
from tui_trainer.runs.store import create_run

runner = CliRunner()

CASES = [
    ("run nope", None, "unknown preset 'nope': choose one of"),
    ("run", None, "missing PRESET: name one"),
    ("run scratch --set bogus=1", None, "unknown config key 'bogus': use one of"),
    ("run scratch --set lr", None, "--set 'lr' is not key=value"),
    ("run scratch --set lr=-1", None, "lr=-1.0 must be > 0: e.g. lr=0.01"),
    ("run scratch --set lr=fast", None, "lr='fast' is not a number: give e.g. lr=0.001"),
    ("run scratch --set epochs=0", None, "epochs=0 must be >= 1"),
    ("run scratch --set epochs=1.5", None, "epochs='1.5' is not an integer"),
    ("run scratch --set batch_size=0", None, "batch_size=0 must be >= 1: e.g. batch_size=256"),
    ("run scratch --set val_fraction=0", None, "val_fraction=0.0 must be in (0, 1): e.g. 0.5"),
    ("run scratch --set val_fraction=1.5", None, "val_fraction=1.5 must be in (0, 1)"),
    ("run scratch --set model=vgg", None, "model='vgg' is not valid: choose one of alexnet,"),
    ("run scratch --set freeze=all", None, "freeze='all' is not valid: choose one of none,"),
    ("run scratch --set augment=blur", None, "augment='blur' is not valid: choose one of"),
    ("run scratch --set freeze=conv", None, "freeze=conv needs pretrained weights"),
    ("run {tmp}/bad.toml", "bad_toml", "bad.toml: bad TOML ("),
    ("run {tmp}/extra.toml", "unknown_key_toml", "extra.toml: unknown key 'lr_decay': use"),
    ("run scratch --data {tmp}/missing", None, "missing does not exist: pass --data DIR"),
    ("run scratch --data {tmp}/empty", "empty_folder", "empty is empty: pass --data DIR"),
    ("run scratch --data {tmp}/flat", "flat_folder", "has no 101_ObjectCategories/ and no class"),
    ("run scratch --data {tmp}/lonely", "lonely_class", "class 'lonely' has 1 image(s), too few"),
    ("run scratch --data {tmp}/split", "split_file_gap", "train.txt:2 names circle/img_99.jpg"),
    ("run scratch --data {tmp}/corrupt", "all_unreadable", "no readable images left in the train"),
    ("run scratch --data {tmp}/mute", "unreadable_class", "class 'stripes' has no readable tr"),
    ("run scratch --runs-dir {tmp}/file/runs", "plain_file", "is not writable (Not a directory)"),
    ("run --resume nope", None, "no run 'nope' in"),
    ("run --resume done", "completed_run", "is completed: it has nothing left to train"),
    ("run --resume boom", "diverged_run", "is diverged: resuming would replay the same steps"),
    ("run --resume live", "running_run", "is running: its process (pid"),
    ("run scratch --resume done", "completed_run", "--resume continues a run with its own config"),
    ("run --resume moved", "data_moved_run", "moved does not exist: pass --data DIR"),
    ("run --resume other --data {tiny}", "other_classes_run", "differ from run"),
    ("run scratch --set weights={tmp}/no.pt", None, "weights file {tmp}/no.pt does not exist"),
    ("run scratch --set weights={tmp}/r18.pt", "resnet_weights", "do not fit alexnet (missing"),
    ("run finetune", "offline", "ImageNet weights for alexnet are not cached at"),
    ("run scratch --device cuda", "no_cuda", "device=cuda but no CUDA GPU is visible: use"),
    ("run scratch --device tpu", None, "device='tpu' is not valid: choose one of auto,"),
    ("show nope", None, "no run 'nope' in"),
    # numbers past what can work: each a typo, not a setting
    ("run scratch --set lr=inf", None, "lr=inf must be a finite number: e.g. lr="),
    ("run scratch --set lr=1e400", None, "lr=inf must be a finite number"),
    ("run scratch --set weight_decay=inf", None, "weight_decay=inf must be a finite number"),
    ("run scratch --set seed=4294967296", None, "seed=4294967296 must be <= 4294967295"),
    ("run scratch --set threads=100000", None, "threads=100000 must be <= 256"),
    ("run scratch --set image_size=5000 --set resize=5000", None, "image_size=5000 must be <="),
    # split files that are not what they claim to be
    ("run scratch --data {tmp}/split", "split_file_binary", "train.txt is not a text file of"),
    ("run scratch --data {tmp}/split", "split_file_escape", "train.txt:1 names circle/../../"),
    ("run scratch --data {tmp}/split", "split_file_empty", "class 'circle' has 0 training im"),
    ("run scratch --data {tmp}/split", "test_file_empty", "the test split is empty for 3 cl"),
    # a runs folder or a file handed in is data, never code or a way out of the folder
    ("run scratch --set weights={tmp}/notes.txt", "text_weights", "is not a torch state dict (not"),
    ("run scratch --set weights={tmp}/plain.pkl", "pickle_weights", "plain.pkl is not a torch"),
    ("run --resume pickled", "pickled_last", "last.pt is unreadable (UnpicklingError): delete it"),
    ("run --resume ../away", "outside_run", "is a path, not a run id: give the name of"),
    ("run --resume {tmp}/away", "outside_run", "run id '{tmp}/away' is a path, not a run id"),
    ("run --resume ..", None, "run id '..' is a path, not a run id"),
    ("run --resume ''", "completed_run", "run id is empty: give one from `tui-trainer runs`"),
    ("run --resume linked", "linked_run", "run 'linked' in {tmp}/runs is a link to a folder out"),
    ("show ../away", "outside_run", "run id '../away' is a path, not a run id"),
    ("show linked", "linked_run", "is a link to a folder outside it: refused"),
    # the LR range test's own options, checked before anything is decoded
    ("lr-find scratch --start 1 --end 0.1", None, "--start 1 must be below --end 0.1"),
    ("lr-find scratch --steps 0", None, "--steps 0 must be >= 5: e.g. --steps 100"),
    ("lr-find scratch --start 0", None, "--start 0 must be a finite number > 0"),
    ("lr-find", None, "missing PRESET: name one"),
    ("lr-find scratch --set lr=-1", None, "lr=-1.0 must be > 0"),
    ("lr-find scratch --runs-dir {tmp}/file/runs", "plain_file", "is not writable (Not a dir"),
]


def _images(folder: Path, count: int, corrupt: bool = False) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        if corrupt:
            (folder / f"img_{i}.jpg").write_bytes(b"not a jpeg")
        else:
            Image.new("RGB", (40, 40), (i * 20, 0, 0)).save(folder / f"img_{i}.jpg")


def _offline(*args, **kwargs):
    raise urllib.error.URLError("no network")


def _fake_run(runs: Path, id_part: str, status: str | None, **meta) -> None:
    meta = {"config": small_config().to_dict(), "preset": "scratch", **meta}
    run = create_run(runs, meta, "scratch", name=id_part)
    if status:
        run.write_summary({**run.summary(), "status": status})


def _split_files(tmp: Path, train: bytes, test: bytes = b"circle/img_01.jpg\n") -> None:
    make_tiny_dataset(tmp / "split" / "101_ObjectCategories", per_class=4)
    (tmp / "split" / "train.txt").write_bytes(train)
    (tmp / "split" / "test.txt").write_bytes(test)


def _pickled_last(runs: Path) -> None:
    run = create_run(runs, {"config": small_config().to_dict()}, "scratch", name="pickled")
    run.write_summary({**run.summary(), "status": "interrupted"})
    torch.save({"model": Path("x"), "state": {}}, run.last_path)  # a class instance


def _linked_run(tmp: Path) -> None:
    _fake_run(tmp / "away", "far", "interrupted")
    (tmp / "runs").mkdir()
    (tmp / "runs" / "linked").symlink_to(next((tmp / "away").iterdir()))


SETUPS = {
    "bad_toml": lambda tmp, mp: (tmp / "bad.toml").write_text("lr = = 0.1\n"),
    "unknown_key_toml": lambda tmp, mp: (tmp / "extra.toml").write_text("lr_decay = 0.1\n"),
    "empty_folder": lambda tmp, mp: (tmp / "empty").mkdir(),
    "flat_folder": lambda tmp, mp: _images(tmp / "flat", 3),  # images, but no class folders
    "lonely_class": lambda tmp, mp: (
        make_tiny_dataset(tmp / "lonely", per_class=4),
        _images(tmp / "lonely" / "lonely", 1),
    ),
    "split_file_gap": lambda tmp, mp: (
        make_tiny_dataset(tmp / "split" / "101_ObjectCategories", per_class=4),
        (tmp / "split" / "train.txt").write_text("circle/img_00.jpg\ncircle/img_99.jpg\n"),
        (tmp / "split" / "test.txt").write_text("circle/img_01.jpg\n"),
    ),
    "all_unreadable": lambda tmp, mp: [
        _images(tmp / "corrupt" / name, 4, corrupt=True) for name in ("a", "b")
    ],
    "unreadable_class": lambda tmp, mp: (
        make_tiny_dataset(tmp / "mute", per_class=4),
        [f.write_bytes(b"text, not a jpeg") for f in (tmp / "mute" / "stripes").iterdir()],
    ),
    "plain_file": lambda tmp, mp: (tmp / "file").write_text("not a folder"),
    "completed_run": lambda tmp, mp: _fake_run(tmp / "runs", "done", "completed"),
    "diverged_run": lambda tmp, mp: _fake_run(tmp / "runs", "boom", "diverged"),
    "running_run": lambda tmp, mp: _fake_run(tmp / "runs", "live", None),  # this pid: alive
    "data_moved_run": lambda tmp, mp: _fake_run(
        tmp / "runs", "moved", "interrupted", data_dir=str(tmp / "moved")
    ),
    "other_classes_run": lambda tmp, mp: _fake_run(
        tmp / "runs", "other", "interrupted", classes=["cat", "dog"]
    ),
    "resnet_weights": lambda tmp, mp: torch.save(
        __import__("torchvision").models.resnet18(num_classes=3).state_dict(), tmp / "r18.pt"
    ),
    "offline": lambda tmp, mp: mp.setattr(torch.hub, "download_url_to_file", _offline),
    "no_cuda": lambda tmp, mp: mp.setattr(torch.cuda, "is_available", lambda: False),
    "text_weights": lambda tmp, mp: (tmp / "notes.txt").write_text("these are not weights\n"),
    "split_file_binary": lambda tmp, mp: _split_files(tmp, b"\xff\xfe\x00circle\x80\n"),
    "split_file_escape": lambda tmp, mp: _split_files(tmp, b"circle/../../train.txt\n"),
    "split_file_empty": lambda tmp, mp: _split_files(tmp, b""),
    "test_file_empty": lambda tmp, mp: _split_files(tmp, b"circle/img_00.jpg\n", b""),
    "pickle_weights": lambda tmp, mp: (tmp / "plain.pkl").write_bytes(pickle.dumps({"a": 1})),
    "pickled_last": lambda tmp, mp: _pickled_last(tmp / "runs"),
    "outside_run": lambda tmp, mp: _fake_run(tmp / "away", "far", "interrupted"),
    "linked_run": lambda tmp, mp: _linked_run(tmp),
}


def _snapshot(folder: Path) -> dict[str, int]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.parametrize(("command", "setup", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_the_runs_folder_alone(
    command, setup, message, tiny_data, tmp_path, monkeypatch
):
    if setup:
        SETUPS[setup](tmp_path, monkeypatch)
    runs = tmp_path / "runs"
    before = _snapshot(runs)
    args = shlex.split(command.format(tmp=tmp_path, tiny=tiny_data))
    if args[0] in ("run", "lr-find") and "--resume" not in args and "--data" not in args:
        args += ["--data", str(tiny_data)]
    if "--runs-dir" not in args:
        args += ["--runs-dir", str(runs)]
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert message.format(tmp=tmp_path) in lines[0], lines[0]
    assert _snapshot(runs) == before


def test_some_unreadable_images_are_skipped_with_a_warning_and_counted(tiny_data, tmp_path):
    # the tiny set holds one corrupt JPEG among 38 images
    result = runner.invoke(
        app,
        ["run", "scratch", "--data", str(tiny_data), "--runs-dir", str(tmp_path / "runs")]
        + small_set_options(epochs=1),
    )
    assert result.exit_code == 0, result.output
    assert f"warning: skipped unreadable image {tiny_data / 'square' / 'img_corrupt.jpg'}" in (
        result.output
    )
    assert "status: completed" in result.output and "skipped_images: 1" in result.output

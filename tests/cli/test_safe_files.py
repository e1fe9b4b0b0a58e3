"""What a run folder cannot do to whoever reads it: a checkpoint holding pickled objects is
refused before anything in it runs, and the files written keep the permissions the umask gives
(a folder shared by a group reads the same whichever file it is)."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest
import torch

from tests.support.processes import small_config, small_set_options
from tests.support.runs import invoke
from tui_trainer.runs.store import create_run, list_runs
from tui_trainer.train.checkpoint import Checkpoint, load_best
from tui_trainer.train.models import build_model


class Payload:
    """Unpickling this runs `touch marker`: what a hostile last.pt would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_run(runs: Path, marker: Path) -> Path:
    meta = {"config": small_config().to_dict(), "preset": "scratch"}
    run = create_run(runs, meta, "scratch", name="hostile")
    run.write_summary({**run.summary(), "status": "interrupted"})
    torch.save({"model": Payload(marker), "epoch": 1}, run.last_path)
    return run.path


def test_the_payload_is_live_when_unpickled_without_weights_only(tmp_path):
    # the control: without the guard, loading this file does run the payload
    marker = tmp_path / "ran"
    path = _hostile_run(tmp_path / "runs", marker) / "last.pt"
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_last_pt_holding_a_pickled_object_is_refused_on_resume_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    folder = _hostile_run(tmp_path / "runs", marker)
    before = sorted(p.name for p in folder.iterdir())
    result = invoke("run", "--resume", folder.name, "--runs-dir", tmp_path / "runs")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert lines == [
        f"error: {folder / 'last.pt'} is unreadable (UnpicklingError): delete it to resume from "
        "the start (it holds a Python object (posix.system), not only tensors; refused: loading "
        "it could run code)"
    ]
    assert not marker.exists()
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_best_pt_holding_a_pickled_object_or_a_list_is_left_out(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"model": Payload(marker)}))
    assert load_best(tmp_path / "evil.pt") == {} and not marker.exists()
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    assert load_best(tmp_path / "list.pt") == {}


def test_a_last_pt_whose_model_is_not_a_state_dict_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    torch.save({"model": [1, 2], "optimizer": {}, "scheduler": {}, "state": {}}, folder / "last.pt")
    with pytest.raises(Exception, match="is unreadable .*: delete it .*not a last.pt of ours"):
        Checkpoint.load(folder)


def test_weights_holding_a_pickled_object_are_refused_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model": Payload(marker)}, tmp_path / "w.pt")
    with pytest.raises(Exception, match="it holds a Python object") as info:
        build_model("alexnet", 3, str(tmp_path / "w.pt"))
    assert "\n" not in str(info.value) and not marker.exists()


def test_cached_imagenet_weights_holding_a_pickled_object_are_refused(tmp_path):
    from tui_trainer.train.models import imagenet_cache_path

    marker = tmp_path / "ran"
    path = imagenet_cache_path("alexnet")  # under the test's own TORCH_HOME
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": Payload(marker)}, path)
    with pytest.raises(Exception, match="it holds a Python object") as info:
        build_model("alexnet", 3, "imagenet")
    assert f"ImageNet weights cached at {path} are not a torch state dict" in str(info.value)
    assert "\n" not in str(info.value) and not marker.exists()


def _modes(folder: Path) -> dict[str, int]:
    names = ("config.json", "summary.json", "metrics.jsonl", "last.pt", "best.pt")
    return {name: stat.S_IMODE((folder / name).stat().st_mode) for name in names}


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_run_files_get_the_permissions_the_umask_gives(tiny_data, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        result = invoke(
            "run", "scratch", "--data", tiny_data, "--runs-dir", tmp_path / "runs",
            *small_set_options(epochs=1, keep_last="true"),  # keep last.pt to look at
        )  # fmt: skip
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    (run,) = list_runs(tmp_path / "runs")
    assert _modes(run.path) == dict.fromkeys(_modes(run.path), mode)
    (cache,) = Path(os.environ["TUI_TRAINER_CACHE"]).iterdir()
    assert stat.S_IMODE(cache.stat().st_mode) == mode

"""Shared fixtures: real Caltech-101, a tiny synthetic image set made on the fly, and isolated
caches. The helpers tests import live in tests/support."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.data import make_tiny_dataset, shared_caltech


@pytest.fixture
def real_data() -> Path:
    path = shared_caltech()
    if path is None:
        pytest.skip("real Caltech-101 not found: set TUI_TRAINER_DATA")
    assert (path / "101_ObjectCategories").is_dir(), f"TUI_TRAINER_DATA={path} has no images"
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "images")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Caches, hub downloads and runs go to a temporary place; never the user's."""
    monkeypatch.setenv("TUI_TRAINER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("TUI_TRAINER_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("TUI_TRAINER_PRESETS", raising=False)
    yield
    # Each AlexNet run leaves ~0.7 GB of checkpoints: free them now, not when pytest prunes its
    # old temp folders, so a full session never needs more than one test's worth of disk.
    shutil.rmtree(tmp_path, ignore_errors=True)

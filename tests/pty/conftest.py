"""The pty tests share one decode cache: the same images decoded once for the whole folder, not
once per test (runs and other caches stay per test, as tests/conftest.py sets them)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def _decode_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("pty-decode-cache")


@pytest.fixture(autouse=True)
def shared_decode_cache(isolated_env, _decode_cache, monkeypatch):
    monkeypatch.setenv("TUI_TRAINER_CACHE", str(_decode_cache))

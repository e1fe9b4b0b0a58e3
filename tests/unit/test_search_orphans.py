"""Which RUNNING trials a worker takes over: another host's worker that died before its run
folder existed is seen gone once its stamps stop (the owner rule), not running forever."""

from __future__ import annotations

import time

import pytest

from tui_trainer.runs import owner
from tui_trainer.studies import search
from tui_trainer.studies.search_spec import SearchSpec


@pytest.fixture
def study(tmp_path):
    spec = SearchSpec(
        name="orphans", description="", base="scratch", path=tmp_path / "s.toml", trials=4, space=()
    )
    return search.open_study(spec, tmp_path), tmp_path


def running_trial(study, who: dict, stamp: float | None):
    trial = study.ask()
    trial.set_user_attr(search.OWNER_ATTR, who)
    if stamp is not None:
        trial.set_user_attr(search.BEAT_ATTR, stamp)
    return study._storage.get_trial(trial._trial_id)


ELSEWHERE = {"host": "another-host", "pid": 4242, "create_time": 1.0, "interval": 30.0}
STALE_S = owner.STALE_AFTER * 30.0 + owner.CLOCK_SKEW_S


def test_another_host_s_trial_without_stamps_for_too_long_is_orphaned(study):
    study, runs = study
    frozen = running_trial(study, ELSEWHERE, time.time() - STALE_S - 5)
    assert search._orphaned(frozen, runs)


def test_another_host_s_freshly_stamped_trial_is_left_alone(study):
    study, runs = study
    frozen = running_trial(study, ELSEWHERE, time.time() - STALE_S + 20)
    assert not search._orphaned(frozen, runs)


def test_the_worker_s_own_interval_sets_the_limit(study):
    study, runs = study
    slow = ELSEWHERE | {"interval": 600.0}  # stamps every 10 minutes: 5 minutes is not silence
    frozen = running_trial(study, slow, time.time() - 300)
    assert not search._orphaned(frozen, runs)


def test_a_trial_with_no_stamp_counts_from_its_start(study):
    study, runs = study
    frozen = running_trial(study, ELSEWHERE, None)  # started just now
    assert not search._orphaned(frozen, runs)


def test_stamping_writes_the_trial_until_it_ends(study, monkeypatch):
    monkeypatch.setenv(owner.HEARTBEAT_ENV, "0.05")
    study, _ = study
    trial = study.ask()
    job = search.Job(study, trial, {})
    with search.stamping(job):
        first = _stamp(study, trial)
        time.sleep(0.3)
        later = _stamp(study, trial)
    assert first is not None and later > first
    study.tell(trial.number, 0.5)
    time.sleep(0.15)  # a stamp after the end would have raised inside the (stopped) thread
    assert _stamp(study, trial) == pytest.approx(later, abs=0.2)


def _stamp(study, trial) -> float | None:
    return study._storage.get_trial(trial._trial_id).user_attrs.get(search.BEAT_ATTR)

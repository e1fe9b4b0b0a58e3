"""Engine events: built by keyword only, each carrying the run id it was built with."""

import dataclasses

import pytest

from tui_trainer.events import Epoch, Log, RunEnded, RunStarted, Step


@pytest.mark.parametrize("event_type", [RunStarted, Log, Step, Epoch, RunEnded])
def test_events_refuse_positional_fields(event_type):
    with pytest.raises(TypeError):
        event_type("r", *([0] * (len(dataclasses.fields(event_type)) - 1)))


def test_an_event_built_by_keyword_keeps_its_run_id_and_defaults():
    ended = RunEnded(run_id="r", status="completed")
    assert (ended.run_id, ended.summary, ended.message) == ("r", {}, "")
    assert Log(run_id="r", message="hi").level == "info"

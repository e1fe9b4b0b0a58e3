"""The Runs table's columns (runs/columns.py): id, status, the settings that differ, results."""

from __future__ import annotations

from tui_trainer.runs.columns import RESULTS, label, table_keys, varying_settings

BASE = {"lr": 0.05, "classes": 2, "image_size": 64, "seed": 42, "threads": 0, "device": "auto"}


def test_only_the_settings_that_differ_become_columns_in_a_fixed_order():
    rows = [BASE, {**BASE, "classes": 3, "threads": 4}, {**BASE, "seed": 0, "device": "cpu"}]
    keys = ["lr", "seed", "classes", "image_size", "threads", "device"]
    # threads and device change no figure: never columns; classes before seed, as in SETTINGS
    assert varying_settings(rows, keys) == ["classes", "seed"]
    assert table_keys(rows, keys) == ["id", "status", "classes", "seed", *RESULTS]


def test_a_key_missing_from_one_run_varies_and_one_run_shows_no_settings():
    rows = [BASE, {**BASE, "momentum": 0.9}]
    assert varying_settings(rows, [*BASE, "momentum"]) == ["momentum"]
    assert table_keys([BASE], list(BASE)) == ["id", "status", *RESULTS]


def test_everything_shows_every_setting_but_the_placement_ones():
    keys = table_keys([BASE], list(BASE), everything=True)
    assert keys == ["id", "status", "classes", "image_size", "seed", "lr", *RESULTS]


def test_console_names_are_words_not_the_reports_column_names():
    assert label("final_train_loss") == "Train loss" and label("epochs") == "Epochs"
    assert label("max_val_acc") == "Best val" and label("aug_p") == "Aug p"
    assert label("some_new_key") == "Some new key"

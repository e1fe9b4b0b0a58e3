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


def test_settings_that_do_not_fit_beside_the_accuracies_move_right_of_the_results():
    rows = [BASE, {**BASE, "classes": 3, "seed": 0, "lr": 0.01}]
    widths = {"id": 25, "status": 11, "classes": 9, "seed": 6, "lr": 6}
    widths |= {"max_val_acc": 10, "test_acc": 10}
    keys = table_keys(rows, list(BASE), width=80, widths=widths)
    assert keys == ["id", "status", "classes", "seed", "lr", *RESULTS]  # 77 of 80
    keys = table_keys(rows, list(BASE), width=72, widths=widths)
    assert keys == ["id", "status", "classes", "seed", *RESULTS, "lr"]  # lr would need 77
    assert table_keys(rows, list(BASE), width=0, widths=widths)[2:5] == ["classes", "seed", "lr"]


def test_the_preset_is_a_column_among_all_settings_only():
    rows = [{**BASE, "preset": "scratch"}, {**BASE, "preset": "finetune"}]
    assert varying_settings(rows, ["preset", *BASE]) == []  # the run's id ends with it
    assert "preset" in table_keys(rows, ["preset", *BASE], everything=True)

"""Sweep files: expansion (list, grid, include, dedupe), validation, and member states."""

from pathlib import Path

import pytest

from tui_trainer.config import RunConfig, list_presets, load_preset
from tui_trainer.errors import ConfigError
from tui_trainer.runs.store import create_run
from tui_trainer.studies import report, sweep_file, sweeps

TINY_PRESET = 'model = "resnet18"\nimage_size = 32\nresize = 36\nepochs = 1\nlr = 0.01\n'


def write_presets(folder: Path, **sweeps: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.toml").write_text(TINY_PRESET)
    (folder / "other.toml").write_text(TINY_PRESET + 'augment = "cs-hf"\n')
    for name, text in sweeps.items():
        (folder / f"{name.replace('_', '-')}.toml").write_text(text)
    return folder


def test_a_list_of_runs_gives_one_member_each(tmp_path):
    d = write_presets(
        tmp_path,
        s='base = "tiny"\n[[runs]]\nname = "a"\nlr = 0.1\n[[runs]]\npreset = "other"\nepochs = 2\n',
    )
    sweep = sweep_file.load_sweep("s", directory=d)
    assert [m.name for m in sweep.members] == ["a", "other-epochs=2"]
    a, b = sweep.members
    assert (a.preset, a.overrides, a.config.lr, a.config.model) == (
        "tiny",
        {"lr": 0.1},
        0.1,
        "resnet18",
    )
    assert (b.preset, b.config.augment, b.config.epochs) == ("other", "cs-hf", 2)


def test_a_grid_crosses_every_value_with_each_run(tmp_path):
    text = 'base = "tiny"\n[[runs]]\nname = "x"\n[[runs]]\nname = "y"\nseed = 7\n'
    text += "[grid]\nlr = [0.01, 0.1]\nepochs = [1, 2]\n"
    sweep = sweep_file.load_sweep("g", directory=write_presets(tmp_path, g=text))
    assert len(sweep.members) == 8
    assert sweep.members[0].name == "x-lr=0.01-epochs=1"
    assert sweep.members[-1].name == "y-lr=0.1-epochs=2"
    assert [(m.config.lr, m.config.epochs) for m in sweep.members[:4]] == [
        (0.01, 1),
        (0.01, 2),
        (0.1, 1),
        (0.1, 2),
    ]
    assert {m.config.seed for m in sweep.members[4:]} == {7}


def test_a_grid_alone_varies_the_base(tmp_path):
    d = write_presets(tmp_path, g='base = "tiny"\n[grid]\nlr = [0.5, 0.25]\n')
    assert [m.name for m in sweep_file.load_sweep("g", directory=d).members] == [
        "tiny-lr=0.5",
        "tiny-lr=0.25",
    ]


def test_identical_configs_run_once_and_overrides_reach_every_member(tmp_path):
    text = 'base = "tiny"\n[[runs]]\nname = "a"\nlr = 0.05\n[[runs]]\nname = "b"\nlr = 0.05\n'
    text += '[[runs]]\nname = "c"\nlr = 0.2\n'
    d = write_presets(tmp_path, s=text)
    sweep = sweep_file.load_sweep("s", directory=d)
    assert [m.name for m in sweep.members] == ["a", "c"] and sweep.dropped == ["b = a"]
    # an override shared by all can make members identical too: the names say so
    forced = sweep_file.load_sweep("s", {"lr": "0.3", "classes": "2"}, directory=d)
    assert [m.name for m in forced.members] == ["a-lr=0.3-classes=2"]
    first = "a-lr=0.3-classes=2"
    assert forced.dropped == [f"b-lr=0.3-classes=2 = {first}", f"c-lr=0.3-classes=2 = {first}"]
    assert forced.members[0].config.classes == 2 and forced.members[0].overrides["lr"] == "0.3"


def test_member_names_end_with_the_overrides_that_change_them(tmp_path):
    text = 'base = "tiny"\n[[runs]]\nname = "e1"\nepochs = 1\n[[runs]]\nname = "e3"\nepochs = 3\n'
    text += '[[runs]]\nname = "lr"\nlr = 0.2\nepochs = 3\n'
    d = write_presets(tmp_path, s=text)
    sweep = sweep_file.load_sweep("s", {"device": "cpu", "epochs": "3"}, directory=d)
    # e1 changes, e3 and lr do not; device (where it runs) names none; e3 is now e1
    assert [m.name for m in sweep.members] == ["e1-epochs=3", "lr"]
    assert sweep.dropped == ["e3 = e1-epochs=3"]
    assert sweep.members[0].config.epochs == 3 and sweep.members[0].overrides["epochs"] == "3"
    assert [m.cell for m in sweep.members] == [m.name for m in sweep.members]
    seeded = sweep_file.load_sweep("s", {"epochs": "2"}, directory=d, seeds=(42, 0))
    assert [m.name for m in seeded.members][:2] == ["e1-epochs=2", "e1-epochs=2-seed0"]


def test_a_bad_override_is_blamed_on_where_it_was_typed(tmp_path):
    d = write_presets(tmp_path, s='base = "tiny"\n[[runs]]\nname = "a"\nlr = 0.1\n')
    for bad, says in (({"epoch": "2"}, "unknown config key 'epoch'"), ({"epochs": "two"}, "two")):
        with pytest.raises(ConfigError) as cli:
            sweep_file.load_sweep("s", bad, directory=d)
        assert str(cli.value).startswith("--set: ") and says in str(cli.value)
        assert ".toml" not in str(cli.value) and "member" not in str(cli.value)
        with pytest.raises(ConfigError, match="^override field: "):
            sweep_file.load_sweep("s", bad, directory=d, source="override field")
    # wrong only with a member's own values: the override and the member are both named
    d2 = write_presets(tmp_path / "2", s='base = "tiny"\n[[runs]]\nname = "big"\nresize = 80\n')
    with pytest.raises(
        ConfigError, match="^--set, on member big: resize=80 must be >= image_size=96"
    ):
        sweep_file.load_sweep("s", {"image_size": "96"}, directory=d2)


def test_include_puts_the_other_sweeps_members_first(tmp_path):
    d = write_presets(
        tmp_path,
        inner='base = "tiny"\n[grid]\nlr = [0.1, 0.2]\n',
        outer='base = "other"\ninclude = ["inner"]\n[[runs]]\nname = "last"\n',
    )
    sweep = sweep_file.load_sweep("outer", directory=d)
    assert [(m.name, m.preset) for m in sweep.members] == [
        ("tiny-lr=0.1", "tiny"),
        ("tiny-lr=0.2", "tiny"),
        ("last", "other"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ('base = "tiny"\nlr = 0.1\n', "unknown key 'lr': a sweep takes"),
        ('base = "nope"\n', "unknown preset 'nope'"),
        ('base = "tiny"\n[[runs]]\nlr = -1.0\n', "member tiny-lr=-1.0: lr=-1.0 must be > 0"),
        ('base = "tiny"\n[[runs]]\nbogus = 1\n', "unknown key 'bogus' in [[runs]]"),
        ('base = "tiny"\n[grid]\nlr = 0.1\n', "[grid] values must be non-empty lists"),
        ('base = "tiny"\n[grid]\nfoo = [1]\n', "unknown config key 'foo' in [grid]"),
        ('base = "tiny"\ninclude = ["s"]\n', "include 's' loops back"),
        ('base = "tiny"\n[[runs]]\nname = "a"\n[[runs]]\nname = "a"\nlr = 0.5\n', "named 'a'"),
        ('base = "tiny"\n[[runs]\n', "bad TOML"),
    ],
)
def test_bad_sweep_files_fail_with_one_line_naming_the_problem(tmp_path, text, message):
    d = write_presets(tmp_path, s=text)
    with pytest.raises(ConfigError) as info:
        sweep_file.load_sweep("s", directory=d)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_sweep_and_preset_names_say_what_to_do(tmp_path):
    d = write_presets(tmp_path, s='base = "tiny"\n')
    with pytest.raises(ConfigError, match=r"unknown sweep 'x': choose one of s \(see"):
        sweep_file.load_sweep("x", directory=d)
    with pytest.raises(ConfigError, match="tiny is a preset, not a sweep: run it with"):
        sweep_file.load_sweep("tiny", directory=d)
    with pytest.raises(ConfigError, match="s is a sweep, not a preset: run it with"):
        load_preset("s", d)


def _fake_run(runs_dir: Path, config: RunConfig, summary: dict) -> None:
    run = create_run(runs_dir, {"config": config.to_dict()}, "fake")
    run.write_summary(summary)


def test_member_states_follow_the_runs_folder(tmp_path):
    d = write_presets(tmp_path / "presets", s='base = "tiny"\n[grid]\nlr = [0.1, 0.2, 0.3, 0.4]\n')
    sweep = sweep_file.load_sweep("s", directory=d)
    runs = tmp_path / "runs"
    a, b, c, _ = (m.config for m in sweep.members)
    _fake_run(runs, a, {"status": "failed"})
    _fake_run(runs, a.with_overrides({"device": "cpu", "threads": 2}), {"status": "completed"})
    _fake_run(runs, b, {"status": "running"})  # no pid: its process is gone
    _fake_run(runs, c, {"status": "diverged"})
    _fake_run(runs, c.with_overrides({"seed": 1}), {"status": "completed"})  # another config
    states = sweeps.member_states(sweep, runs)
    assert [s.status for s in states] == ["completed", "crashed", "diverged", "pending"]
    assert states[0].run is not None and states[3].run is None
    # crashed and never-run members run again; completed and diverged ones do not
    assert [m.name for m in sweeps.pending_members(states)] == ["tiny-lr=0.2", "tiny-lr=0.4"]
    assert sweeps.sweep_exit_code(states, interrupted=False) == 1
    assert sweeps.sweep_exit_code(states, interrupted=True) == 130


def test_shipped_sweeps_are_not_presets_and_cover_the_report():
    assert not {"scratch-lr-sweep", "finetune-lr-sweep", "report-study"} & {
        p.name for p in list_presets()
    }
    scratch = sweep_file.load_sweep("scratch-lr-sweep")
    assert [
        (m.config.lr, m.config.epochs, m.config.step_size, m.config.gamma) for m in scratch.members
    ] == [
        (0.001, 30, 20, 0.1),
        (0.005, 20, 10, 0.1),
        (0.01, 30, 15, 0.1),
        (0.05, 30, 20, 0.1),
        (0.1, 30, 5, 0.5),
        (0.05, 40, 20, 0.1),
    ]
    assert len(sweep_file.load_sweep("finetune-lr-sweep").members) == 3
    study = sweep_file.load_sweep("report-study")
    assert len(study.members) == 18
    assert study.dropped == ["finetune = finetune-lr0.005-e20-s10-g0.1"]
    # every cell of the report's tables is filled by exactly one member of the study
    configs = [m.config.to_dict() for m in study.members]
    for table in report.TABLES:
        for row in table.rows:
            for col in table.columns:
                match = {**row.match, **col.where}
                hits = [c for c in configs if report._matches(c, match)]
                assert len(hits) == 1, (table.key, row.keys, col.name)
                assert report.protocol_of(hits[0]) == "full"


def test_seeds_repeat_each_member_and_the_own_seed_keeps_its_name(tmp_path):
    text = 'base = "tiny"\nseeds = [42, 0, 1]\n[[runs]]\nname = "a"\nlr = 0.1\n'
    text += '[[runs]]\nname = "b"\nlr = 0.2\n'
    sweep = sweep_file.load_sweep("s", directory=write_presets(tmp_path, s=text))
    assert [m.name for m in sweep.members] == [
        "a",
        "a-seed0",
        "a-seed1",
        "b",
        "b-seed0",
        "b-seed1",
    ]
    assert [m.config.seed for m in sweep.members] == [42, 0, 1] * 2
    assert [m.cell for m in sweep.members] == ["a"] * 3 + ["b"] * 3
    assert sweep.seeds == (42, 0, 1)
    # the seed-42 member is the member as it was before seeds: same overrides, same config
    assert sweep.members[0].overrides == {"lr": 0.1} and sweep.members[1].overrides["seed"] == 0


def test_the_seeds_flag_wins_over_the_file_and_reaches_included_sweeps(tmp_path):
    d = write_presets(
        tmp_path,
        inner='base = "tiny"\n[[runs]]\nname = "in"\n',
        outer='base = "tiny"\nseeds = [5, 6]\ninclude = ["inner"]\n[[runs]]\nname = "out"\n'
        "lr = 1\n",
    )
    # the file's seeds apply to its own members; the included sweep keeps its own (none)
    assert [m.name for m in sweep_file.load_sweep("outer", directory=d).members] == [
        "in",
        "out-seed5",
        "out-seed6",
    ]
    forced = sweep_file.load_sweep("outer", directory=d, seeds=sweep_file.first_seeds(2))
    assert [m.name for m in forced.members] == ["in", "in-seed0", "out", "out-seed0"]
    assert forced.seeds == (42, 0)


def test_first_seeds_start_with_the_default_seed():
    assert sweep_file.first_seeds(1) == (42,)
    assert sweep_file.first_seeds(4) == (42, 0, 1, 2)
    assert len(set(sweep_file.first_seeds(60))) == 60
    with pytest.raises(ConfigError, match="--seeds 0: give at least 1"):
        sweep_file.first_seeds(0)


def test_a_grid_over_seed_stays_separate_members(tmp_path):
    d = write_presets(tmp_path, g='base = "tiny"\n[grid]\nseed = [1, 2]\n')
    sweep = sweep_file.load_sweep("g", directory=d)
    assert [m.name for m in sweep.members] == ["tiny-seed=1", "tiny-seed=2"]
    assert [m.cell for m in sweep.members] == ["tiny-seed=1", "tiny-seed=2"]
    assert sweep.seeds == ()


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ('base = "tiny"\nseeds = [1, 1]\n', None, "seeds must be distinct whole numbers"),
        ('base = "tiny"\nseeds = ["a"]\n', None, "seeds must be distinct whole numbers"),
        ('base = "tiny"\nseeds = [-1]\n', None, "seeds must be distinct whole numbers"),
        ('base = "tiny"\nseeds = [1]\n[grid]\nseed = [1, 2]\n', None, "sets seed itself"),
        ('base = "tiny"\nseeds = [1, 2]\n', {"seed": "3"}, "and seeds repeats it over seeds"),
        ('base = "tiny"\nseeds = [99999999999]\n', None, "seed=99999999999 must be <="),
        ('base = "tiny"\n[grid]\nlr = [1]\nseeds = [1]\n', None, "seeds goes at the top"),
    ],
)
def test_bad_seeds_fail_with_one_line(tmp_path, text, overrides, message):
    d = write_presets(tmp_path, s=text)
    with pytest.raises(ConfigError) as info:
        sweep_file.load_sweep("s", overrides, directory=d)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_seed_members_resume_one_by_one(tmp_path):
    d = write_presets(tmp_path / "presets", s='base = "tiny"\nseeds = [42, 0, 1]\n')
    sweep = sweep_file.load_sweep("s", directory=d)
    runs = tmp_path / "runs"
    # a run made before the sweep had seeds, with the default seed: the first seed is done
    _fake_run(runs, load_preset("tiny", d).config, {"status": "completed"})
    _fake_run(runs, sweep.members[1].config, {"status": "failed"})
    states = sweeps.member_states(sweep, runs)
    assert [s.status for s in states] == ["completed", "failed", "pending"]
    assert [m.name for m in sweeps.pending_members(states)] == ["tiny-seed0", "tiny-seed1"]


def test_the_shipped_seed_sweep_repeats_the_scratch_row():
    sweep = sweep_file.load_sweep("scratch-seeds")
    scratch = load_preset("scratch").config
    assert [m.config.seed for m in sweep.members] == [42, 0, 1]
    assert sweep.members[0].config == scratch
    assert all(m.config.with_overrides({"seed": 42}) == scratch for m in sweep.members)
    assert all(report.protocol_of(m.config.to_dict()) == "full" for m in sweep.members)

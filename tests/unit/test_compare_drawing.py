"""runs/display.plot_compare: a seed group as a band (mean, min, max in one colour), runs as
single curves, recorded through a stand-in for plotext."""

import pytest

from tui_trainer.runs.display import CURVE_COLORS, EDGE_MARKER, plot_compare


class Recorder:
    """Records plotext calls: every `plot` as (xs, ys, keywords)."""

    def __init__(self):
        self.lines = []

    def plot(self, xs, ys, **kwargs):
        self.lines.append((list(xs), list(ys), kwargs))

    def title(self, text):
        pass

    def xlabel(self, text):
        pass


def epochs(accs):
    return [{"epoch": e, "val_acc": a} for e, a in enumerate(accs, start=1)]


def test_a_group_is_a_labelled_mean_between_dotted_min_and_max():
    plt = Recorder()
    group = [epochs([0.1, 0.2, 0.3]), epochs([0.3, 0.4, 0.5]), epochs([0.2, 0.3])]
    plot_compare(plt, {"other lr=0.01": epochs([0.5, 0.6])}, "val_acc", {"scratch": group})
    low, high, mean, run = plt.lines
    assert low[:2] == ([1, 2, 3], [0.1, 0.2, 0.3]) and high[:2] == ([1, 2, 3], [0.3, 0.4, 0.5])
    assert mean[0] == [1, 2, 3] and mean[1] == pytest.approx([0.2, 0.3, 0.4])
    assert mean[2]["label"] == "scratch (n=3)" and low[2].get("label") is None
    assert {low[2]["color"], high[2]["color"], mean[2]["color"]} == {CURVE_COLORS[0]}
    assert low[2]["marker"] == high[2]["marker"] == EDGE_MARKER != mean[2]["marker"]
    assert run[2] == {"color": CURVE_COLORS[1], "marker": "braille", "label": "other lr=0.01"}


def test_a_run_that_goes_on_alone_is_drawn_on_from_the_bands_end():
    plt = Recorder()
    plot_compare(plt, {}, "val_acc", {"g": [epochs([0.1, 0.2, 0.3, 0.4]), epochs([0.3, 0.4])]})
    assert len(plt.lines) == 4
    tail = plt.lines[3]
    assert tail[:2] == ([2, 3, 4], [0.2, 0.3, 0.4]) and tail[2]["marker"] == EDGE_MARKER


def test_a_group_of_one_run_draws_as_a_run():
    plt = Recorder()
    plot_compare(plt, {}, "val_acc", {"g": [epochs([0.1, 0.2])]})
    assert plt.lines == [
        ([1, 2], [0.1, 0.2], {"color": CURVE_COLORS[0], "marker": "braille", "label": "g (n=1)"})
    ]

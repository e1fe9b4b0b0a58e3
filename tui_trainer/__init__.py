"""tui-trainer: train and compare image classifiers (the Caltech-101 report) from the terminal."""

__version__ = "0.1.0"

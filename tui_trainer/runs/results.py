"""Per-class test results: which classes a run gets wrong, and what it takes them for.

At the end of a completed run the engine stores, beside the summary, `test_results.json`:

    classes         class names, index = label
    per_class       [{"class", "correct", "total"}] in class order
    confusion       confusion[true][predicted] = number of test images
    misclassified   [{"path" (relative to images_dir), "true", "pred"}]
    images_dir      where the paths start, to open an image
    accuracy        correct / total over the whole test split (equals summary's test_acc)

Reading needs no torch: the TUI and `show` use the helpers below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trainer.files import read_json, write_json_atomic

RESULTS_FILE = "test_results.json"


def results_path(run_dir: Path) -> Path:
    return Path(run_dir) / RESULTS_FILE


def compute_results(
    classes: list[str], labels: list[int], preds: list[int], paths: list[str], images_dir: Path
) -> dict[str, Any]:
    """Confusion counts, per-class tallies and the misclassified images of one test pass."""
    n = len(classes)
    confusion = [[0] * n for _ in range(n)]
    misclassified = []
    for path, true, pred in zip(paths, labels, preds, strict=True):
        confusion[true][pred] += 1
        if true != pred:
            misclassified.append({"path": path, "true": classes[true], "pred": classes[pred]})
    per_class = [
        {"class": name, "correct": confusion[i][i], "total": sum(confusion[i])}
        for i, name in enumerate(classes)
    ]
    correct = sum(c["correct"] for c in per_class)
    return {
        "classes": list(classes),
        "accuracy": correct / max(len(labels), 1),
        "per_class": per_class,
        "confusion": confusion,
        "misclassified": misclassified,
        "images_dir": str(Path(images_dir).resolve()),  # paths stay valid from any folder
    }


def save_test_results(run_dir: Path, splits, test_split, preds) -> dict[str, Any]:
    """Called by the engine with its `Splits`, the test `TensorSplit` and predicted labels."""
    results = compute_results(
        splits.classes,
        test_split.labels.tolist(),
        [int(p) for p in preds.tolist()],
        test_split.paths,
        splits.images_dir,
    )
    write_json_atomic(results_path(run_dir), results)
    return results


def load_test_results(run_dir: Path) -> dict[str, Any] | None:
    """The stored results, or None for a run without them (not completed, or older) and for a
    file of another shape: a shared runs folder may hold anything under this name."""
    data = read_json(results_path(run_dir))
    return data if data.get("per_class") is not None and well_formed(data) else None


def well_formed(data: dict[str, Any]) -> bool:
    """The shape `compute_results` writes: what the readers below index without checking."""
    classes, per_class = data.get("classes"), data.get("per_class")
    confusion, wrong = data.get("confusion"), data.get("misclassified", [])
    if not _list_of(classes, str) or not _list_of(per_class, dict):
        return False
    n = len(classes)
    if not all(
        isinstance(c.get("class"), str) and _count(c.get("correct")) and _count(c.get("total"))
        for c in per_class
    ):
        return False
    if not (_list_of(confusion, list) and len(confusion) == n):
        return False
    if not all(len(row) == n and all(_count(v) for v in row) for row in confusion):
        return False
    keys = ("path", "true", "pred")
    texts = all(all(isinstance(m.get(k), str) for k in keys) for m in wrong)
    return _list_of(wrong, dict) and texts


def _list_of(value: Any, kind: type) -> bool:
    return isinstance(value, list) and all(isinstance(v, kind) for v in value)


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


@dataclass(frozen=True)
class ClassScore:
    name: str
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def worst_classes(results: dict[str, Any], n: int = 10) -> list[ClassScore]:
    """The n classes with the lowest test accuracy (more test images first on ties)."""
    scores = [ClassScore(c["class"], c["correct"], c["total"]) for c in results["per_class"]]
    scores = [s for s in scores if s.total]
    return sorted(scores, key=lambda s: (s.accuracy, -s.total, s.name))[:n]


def confused_pairs(results: dict[str, Any], n: int = 10) -> list[tuple[str, str, int]]:
    """(true class, predicted class, count): the n most frequent confusions."""
    classes, confusion = results["classes"], results["confusion"]
    pairs = [
        (classes[t], classes[p], count)
        for t, row in enumerate(confusion)
        for p, count in enumerate(row)
        if t != p and count
    ]
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))[:n]


def misclassified_images(results: dict[str, Any]) -> list[tuple[Path, str, str]]:
    """(full path, true class, predicted class) of every misclassified test image."""
    root = Path(results.get("images_dir", ""))
    return [(root / m["path"], m["true"], m["pred"]) for m in results["misclassified"]]

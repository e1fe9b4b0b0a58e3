"""The preset picker: an option list grouped by study, in the report's order."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ...config import Preset

STUDIES = ("Scratch", "Transfer learning", "Augmentation", "Backbones")


def by_study(presets: list[Preset]) -> list[tuple[str, list[Preset]]]:
    order = {study: i for i, study in enumerate(STUDIES)}
    groups: dict[str, list[Preset]] = {}
    for preset in sorted(presets, key=lambda p: (order.get(p.study, len(STUDIES)), p.name)):
        groups.setdefault(preset.study, []).append(preset)
    return list(groups.items())


class PresetPicker(OptionList):
    """Study headings are disabled options; each preset's option id is its name."""

    def __init__(self, presets: list[Preset], **kwargs: Any) -> None:
        options: list[Option] = []
        for study, group in by_study(presets):
            options.append(Option(Text(study, style="bold"), disabled=True))
            options.extend(Option(f"  {p.name}", id=p.name) for p in group)
        super().__init__(*options, **kwargs)
        self.presets = {p.name: p for p in presets}

    def select_preset(self, name: str) -> None:
        self.highlighted = self.get_option_index(name)

    @property
    def current(self) -> Preset | None:
        if self.highlighted is None:
            return None
        return self.presets.get(self.get_option_at_index(self.highlighted).id or "")

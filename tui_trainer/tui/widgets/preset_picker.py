"""The preset picker: an option list grouped by study, in the report's order, then the sweeps.

A preset's option id is its name; a sweep's is "sweep:" and its name (a sweep and a preset may
share a name: `finetune` is both a preset and a member of sweeps). A preset whose form holds
edits is marked `EDITED_MARK` until they are reset."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui_trainer.config import Preset

STUDIES = ("Scratch", "Transfer learning", "Augmentation", "Backbones")
SWEEP_PREFIX = "sweep:"
EDITED_MARK = "*"


def by_study(presets: list[Preset]) -> list[tuple[str, list[Preset]]]:
    order = {study: i for i, study in enumerate(STUDIES)}
    groups: dict[str, list[Preset]] = {}
    for preset in sorted(presets, key=lambda p: (order.get(p.study, len(STUDIES)), p.name)):
        groups.setdefault(preset.study, []).append(preset)
    return list(groups.items())


class PresetPicker(OptionList):
    """Study headings are disabled options; each preset's option id is its name."""

    def __init__(self, presets: list[Preset], sweeps: list[str] = (), **kwargs: Any) -> None:
        options: list[Option] = []
        for study, group in by_study(presets):
            options.append(Option(Text(study, style="bold"), disabled=True))
            options.extend(Option(f"  {p.name}", id=p.name) for p in group)
        if sweeps:
            options.append(Option(Text("Sweeps", style="bold"), disabled=True))
            options.extend(Option(f"  {name}", id=f"{SWEEP_PREFIX}{name}") for name in sweeps)
        super().__init__(*options, **kwargs)
        self.presets = {p.name: p for p in presets}

    def mark_edited(self, name: str, edited: bool) -> None:
        """Show (or drop) the edited mark beside preset `name`."""
        if name in self.presets:
            self.replace_option_prompt(name, f"  {name} {EDITED_MARK}" if edited else f"  {name}")

    def select_preset(self, option_id: str) -> None:
        """Highlight a preset by name, or a sweep by "sweep:NAME"."""
        self.highlighted = self.get_option_index(option_id)

    @property
    def current_sweep(self) -> str | None:
        """The highlighted sweep's name (None when a preset is highlighted)."""
        if self.highlighted is None:
            return None
        option_id = self.get_option_at_index(self.highlighted).id or ""
        return option_id.removeprefix(SWEEP_PREFIX) if option_id.startswith(SWEEP_PREFIX) else None

    @property
    def current(self) -> Preset | None:
        if self.highlighted is None:
            return None
        return self.presets.get(self.get_option_at_index(self.highlighted).id or "")

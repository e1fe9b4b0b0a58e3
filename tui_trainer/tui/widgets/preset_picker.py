"""The preset picker: an option list grouped by study, in the report's order, then the sweeps,
then the searches.

A preset's option id is its name; a sweep's is "sweep:" and its name (a sweep and a preset may
share a name: `finetune` is both a preset and a member of sweeps), a search's "search:" and its
name. A preset whose form holds
edits is marked `EDITED_MARK` until they are reset."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui_trainer.config import Preset

STUDIES = ("Scratch", "Transfer learning", "Augmentation", "Backbones")
SWEEP_PREFIX = "sweep:"
SEARCH_PREFIX = "search:"
EDITED_MARK = "*"


def by_study(presets: list[Preset]) -> list[tuple[str, list[Preset]]]:
    order = {study: i for i, study in enumerate(STUDIES)}
    groups: dict[str, list[Preset]] = {}
    for preset in sorted(presets, key=lambda p: (order.get(p.study, len(STUDIES)), p.name)):
        groups.setdefault(preset.study, []).append(preset)
    return list(groups.items())


class PresetPicker(OptionList):
    """Study headings are disabled options; each preset's option id is its name."""

    def __init__(
        self, presets: list[Preset], sweeps: list[str] = (), searches: list[str] = (), **kwargs: Any
    ) -> None:
        options: list[Option] = []
        for study, group in by_study(presets):
            options.append(Option(Text(study, style="bold"), disabled=True))
            options.extend(Option(f"  {p.name}", id=p.name) for p in group)
        if sweeps:
            options.append(Option(Text("Sweeps", style="bold"), disabled=True))
            options.extend(Option(f"  {name}", id=f"{SWEEP_PREFIX}{name}") for name in sweeps)
        if searches:
            options.append(Option(Text("Searches", style="bold"), disabled=True))
            options.extend(Option(f"  {name}", id=f"{SEARCH_PREFIX}{name}") for name in searches)
        super().__init__(*options, **kwargs)
        self.presets = {p.name: p for p in presets}

    def mark_edited(self, name: str, edited: bool) -> None:
        """Show (or drop) the edited mark beside preset `name`."""
        if name in self.presets:
            self.replace_option_prompt(name, f"  {name} {EDITED_MARK}" if edited else f"  {name}")

    def select_preset(self, option_id: str) -> None:
        """Highlight a preset by name, a sweep by "sweep:NAME", a search by "search:NAME"."""
        self.highlighted = self.get_option_index(option_id)

    def _current(self, prefix: str) -> str | None:
        if self.highlighted is None:
            return None
        option_id = self.get_option_at_index(self.highlighted).id or ""
        return option_id.removeprefix(prefix) if option_id.startswith(prefix) else None

    @property
    def current_sweep(self) -> str | None:
        """The highlighted sweep's name (None when a preset or a search is highlighted)."""
        return self._current(SWEEP_PREFIX)

    @property
    def current_search(self) -> str | None:
        """The highlighted search's name (None when a preset or a sweep is highlighted)."""
        return self._current(SEARCH_PREFIX)

    @property
    def current(self) -> Preset | None:
        if self.highlighted is None:
            return None
        return self.presets.get(self.get_option_at_index(self.highlighted).id or "")

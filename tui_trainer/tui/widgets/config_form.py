"""The hyperparameter form: one field per config key, checked by the config module itself.

`check_form` runs the values through `parse_value` and `RunConfig.with_overrides` (the code
behind `--set`, via `build_config`), so the form accepts exactly what the CLI accepts; a
`ConfigError` is pinned to the field its message names.

Edits belong to their preset until they are discarded: the form keeps each preset's edited
values (`edits`), so moving through the preset list (or to a sweep) and back shows them again;
only `reset` puts a preset's own values back. `Edited` tells the view whenever the shown
preset's edits change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.containers import Container
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from tui_trainer.config import (
    AUGMENTATIONS,
    DEVICES,
    FREEZE_POLICIES,
    MODELS,
    Preset,
    RunConfig,
    parse_value,
)
from tui_trainer.errors import ConfigError
from tui_trainer.tui.widgets.choice import Choice

# (config key, label), laid out two per row.
FIELDS = (
    ("lr", "lr"),
    ("epochs", "epochs"),
    ("step_size", "step size"),
    ("gamma", "gamma"),
    ("batch_size", "batch"),
    ("classes", "classes"),
    ("image_size", "image size"),
    ("resize", "resize"),
    ("model", "model"),
    ("weights", "weights"),
    ("freeze", "freeze"),
    ("augment", "augment"),
    ("device", "device"),
)
CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODELS,
    "weights": ("none", "imagenet"),
    "freeze": FREEZE_POLICIES,
    "augment": AUGMENTATIONS,
    "device": DEVICES,
}
FORM_ERROR = "form"  # errors that name no field of the form


@dataclass
class FormResult:
    config: RunConfig | None
    overrides: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def _field_of(message: str, keys: set[str]) -> str:
    """Config errors start with the key they are about ("lr=-1 must be > 0: ...")."""
    match = re.match(r"(\w+)", message)
    return match.group(1) if match and match.group(1) in keys else FORM_ERROR


def check_form(preset: Preset, values: dict[str, str]) -> FormResult:
    """Overrides are the values that differ from the preset's; errors map key -> message.
    The preset is the one the form was filled from (not the file read again per keystroke)."""
    base = preset.config
    overrides: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, text in values.items():
        try:
            value = parse_value(key, text)
        except ConfigError as exc:
            errors[key] = str(exc)
            continue
        if value != getattr(base, key):
            overrides[key] = text.strip()
    if errors:
        return FormResult(None, overrides, errors)
    try:
        config = base.with_overrides(overrides)  # as build_config does for --set
    except ConfigError as exc:
        return FormResult(None, overrides, {_field_of(str(exc), set(values)): str(exc)})
    return FormResult(config, overrides)


class FormField(Container):
    """Label, editor and (when `-invalid`) the error message under them."""

    def __init__(self, key: str, label: str) -> None:
        super().__init__(id=f"field-{key}", classes="form-field")
        self.key, self.label = key, label

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="field-label")
        if self.key in CHOICES:
            yield Choice(CHOICES[self.key], id=self.key)
        else:
            yield Input(compact=True, id=self.key, select_on_focus=True)
        yield Static("", classes="field-error")

    def set_error(self, message: str | None) -> None:
        self.set_class(bool(message), "-invalid")
        self.query_one(".field-error", Static).update(message or "")


def preset_values(preset: Preset, device: str | None = None) -> dict[str, str]:
    """The form's text for each field of `preset` (its device replaced by the app's --device)."""
    out = {}
    for key, _ in FIELDS:
        value = getattr(preset.config, key)
        if key == "device" and device:
            value = device
        out[key] = f"{value:g}" if isinstance(value, float) else str(value)
    return out


def describe_edits(edited: dict[str, str], pristine: dict[str, str]) -> str:
    """ "epochs=3 classes=2": the fields whose text differs from the preset's."""
    return " ".join(f"{k}={v}" for k, v in edited.items() if v.strip() != pristine.get(k))


class ConfigForm(Widget):
    """The chosen preset's hyperparameters, validated as they are typed."""

    class Edited(Message):
        """The shown preset's edits changed: `changes` ("epochs=3"), empty when it has none."""

        def __init__(self, preset: str, changes: str) -> None:
            super().__init__()
            self.preset, self.changes = preset, changes

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.preset: Preset | None = None
        self.device: str | None = None
        self.edits: dict[str, dict[str, str]] = {}  # preset name -> its edited field texts
        self._told: tuple[str, str] | None = None  # the last Edited posted

    def compose(self) -> ComposeResult:
        for key, label in FIELDS:
            yield FormField(key, label)
        yield Static("", id="form-error")

    def load(self, preset: Preset, device: str | None = None) -> None:
        """Fill every field with the preset's edits if it has some, else from the preset (and
        the app's --device), then check them once."""
        self.preset, self.device = preset, device
        texts = self.edits.get(preset.name) or preset_values(preset, device)
        with self.prevent(Input.Changed, Choice.Changed):  # not one check per field
            self._fill(texts)
        self.check()

    def reset(self) -> None:
        """Discard the shown preset's edits: its own values again."""
        if self.preset is not None:
            self.edits.pop(self.preset.name, None)
            self.load(self.preset, self.device)

    @property
    def changes(self) -> str:
        """The shown preset's edits ("epochs=3 lr=0.01"), "" when it has none."""
        if self.preset is None or self.preset.name not in self.edits:
            return ""
        pristine = preset_values(self.preset, self.device)
        return describe_edits(self.edits[self.preset.name], pristine)

    def _fill(self, texts: dict[str, str]) -> None:
        for key, _ in FIELDS:
            text = texts[key]
            editor = self.query_one(f"#{key}")
            if isinstance(editor, Choice):  # a preset's weights path (or --device) joins
                extra = () if text in CHOICES[key] else (text,)
                editor.set_options((*CHOICES[key], *extra))
            editor.value = text

    def set_value(self, key: str, text: str) -> None:
        """Put `text` into one field (the LR range test's suggestion), then check the form."""
        self.query_one(f"#{key}", Input).value = text
        self.check()

    def values(self) -> dict[str, str]:
        out = {}
        for key, _ in FIELDS:
            editor = self.query_one(f"#{key}")
            out[key] = str(editor.value)
        return out

    def check(self) -> FormResult:
        if self.preset is None:
            return FormResult(None, {}, {FORM_ERROR: "choose a preset first"})
        values = self.values()
        result = check_form(self.preset, values)
        self.show_errors(result.errors)
        self._remember(values)
        return result

    def _remember(self, values: dict[str, str]) -> None:
        """Keep the preset's edits (or forget them once every field is its own again)."""
        assert self.preset is not None
        name = self.preset.name
        if describe_edits(values, preset_values(self.preset, self.device)):
            self.edits[name] = values
        else:
            self.edits.pop(name, None)
        told = (name, self.changes)
        if told != self._told:
            self._told = told
            self.post_message(self.Edited(*told))

    def show_errors(self, errors: dict[str, str]) -> None:
        for field_widget in self.query(FormField):
            field_widget.set_error(errors.get(field_widget.key))
        general = self.query_one("#form-error", Static)
        general.update(errors.get(FORM_ERROR, ""))
        general.set_class(FORM_ERROR in errors, "-invalid")
        self.set_class(bool(errors), "-invalid")

    def first_invalid(self) -> Widget | None:
        for field_widget in self.query(".form-field.-invalid"):
            return field_widget.query_one(f"#{field_widget.key}")
        return None

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.preset is not None:
            self.check()

    def on_choice_changed(self, event: Choice.Changed) -> None:
        if self.preset is not None:
            self.check()

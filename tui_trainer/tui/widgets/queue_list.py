"""The queue of runs waiting to train: remove with x/delete, reorder with shift+up/down."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui_trainer.tui.jobs import Job
from tui_trainer.tui.messages import QueueEdit


class QueueList(OptionList):
    BINDINGS = [
        Binding("x,delete", "remove_job", "Remove"),
        # short key names: with Start, LR find and the views the bar must still fit 80 columns
        Binding("shift+up", "move_job(-1)", "Sooner", key_display="⇧↑"),
        Binding("shift+down", "move_job(1)", "Later", key_display="⇧↓"),
    ]

    def show(self, jobs: list[Job]) -> None:
        """Redraw, keeping the highlight on the same job where it is still queued."""
        keep = self.current_number
        self.clear_options()
        self.add_options(
            Option(f"{i}. {job.label}", id=str(job.number)) for i, job in enumerate(jobs, 1)
        )
        numbers = [job.number for job in jobs]
        if numbers:
            self.highlighted = numbers.index(keep) if keep in numbers else 0
        self.set_class(not jobs, "-empty")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Remove, sooner and later leave the key bar while the queue is empty."""
        if action in ("remove_job", "move_job") and not self.option_count:
            return False
        return True

    @property
    def current_number(self) -> int | None:
        if self.highlighted is None or not self.option_count:
            return None
        return int(self.get_option_at_index(self.highlighted).id or 0)

    def action_remove_job(self) -> None:
        if self.current_number is not None:
            self.post_message(QueueEdit(self.current_number))

    def action_move_job(self, delta: int) -> None:
        if self.current_number is not None:
            self.post_message(QueueEdit(self.current_number, delta))

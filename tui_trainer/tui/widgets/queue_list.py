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
        Binding("shift+up", "move_job(-1)", "Sooner"),
        Binding("shift+down", "move_job(1)", "Later"),
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

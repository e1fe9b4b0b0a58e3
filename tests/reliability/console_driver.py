"""The console (the real app, its real driver) with one start made for it. Test tooling only.

    python tests/reliability/console_driver.py DATA RUNS MODE EPOCHS

Opens the console on DATA and RUNS and, once mounted, starts the small test run
(`tests.support.processes.SMALL`, EPOCHS epochs) as Start would: MODE `in-console` trains it in
the console's thread, `detached` spawns a `tui-trainer run` child. The keys that fill the form
are left out: the tests are about what the console does with its run, not about typing. Exits
with the app's return code, as `tui-trainer tui` does. HEADLESS=1 in the environment: no
terminal (Textual's headless driver).
"""

from __future__ import annotations

import os
import sys

from tests.support.processes import SMALL
from tui_trainer import config as C
from tui_trainer.tui.app import make_app
from tui_trainer.tui.jobs import StartMode


def main(data_dir: str, runs_dir: str, mode: str, epochs: str) -> int:
    overrides = {key: str(value) for key, value in {**SMALL, "epochs": epochs}.items()}
    _, config = C.build_config("scratch", overrides)
    app = make_app(data_dir=data_dir, runs_dir=runs_dir)

    async def start(pilot) -> None:
        await pilot.pause()
        app.submit("scratch", overrides, config, StartMode(mode))

    app.run(headless=os.environ.get("HEADLESS") == "1", auto_pilot=start)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))

"""A sweep the console trains one member at a time takes each member's claim, as `tui-trainer
sweep` does: a member another live process has claimed is skipped (said so, not trained), the
others train under their claim, let go when they end."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import REPO
from tests.support.processes import subprocess_env
from tests.support.tui import ScriptedEngine, drive, notices, wait_for
from tui_trainer.runs.claims import claim_folder
from tui_trainer.runs.owner import OWNER_FILE
from tui_trainer.studies import sweep_file, sweeps
from tui_trainer.tui.app import make_app

# Takes a member's claim in another process, says so, and waits to be killed.
HOLD_CLAIM = """
import sys, time
from tui_trainer.runs.claims import take_claim
taken = take_claim(sys.argv[1], sys.argv[2], sweep="scratch-lr-sweep", member="m")
print(type(taken).__name__, flush=True)
time.sleep(600)
"""


def test_the_console_skips_a_member_claimed_elsewhere_and_trains_the_rest_claimed(
    tiny_data, tmp_path
):
    runs = tmp_path / "runs"
    sweep = sweep_file.load_sweep("scratch-lr-sweep")
    first, second = sweep.members[:2]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIM, str(runs), sweeps.member_key(first)],
        env=subprocess_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    engine = ScriptedEngine(epochs=1, steps=2)
    app = make_app(data_dir=tiny_data, runs_dir=runs, engine=engine)
    second_claim = claim_folder(runs, sweeps.member_key(second))

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.submit_sweep(sweep, [first, second])
        await wait_for(
            pilot,
            lambda: len(engine.calls) == 1 and app.current_job is None and not len(app.queue),
            timeout=120,
            what="the second member",
        )
        said = notices(app)
        assert any("running elsewhere" in n for n in said), said

    try:
        assert holder.stdout.readline().strip() == "MemberClaim"
        drive(app, scenario, size=(120, 36))
    finally:
        holder.kill()
        holder.wait()
    assert engine.calls == [(second.preset, dict(second.overrides))]  # the first: not trained
    states = {s.member.name: s.status for s in sweeps.member_states(sweep, runs)}
    assert states[second.name] == "completed"
    # the second trained under its claim, let go at its end (owner.json removed)
    assert second_claim.is_dir() and not (second_claim / OWNER_FILE).exists()

"""`paygate reconcile`: one bank's statement for one date, through the running gateway."""

from __future__ import annotations

from gateway.cli.up import read_run_file
from gateway.settings import Settings


def cmd_reconcile(settings: Settings, bank_id: str, day: str, apply: bool, as_json: bool) -> int:
    from gateway.recon.command import reconcile_command

    # preflight found run.json and a gateway answering at its URL
    info = read_run_file(settings.state_dir)
    return reconcile_command(info, bank_id, day, apply=apply, as_json=as_json)

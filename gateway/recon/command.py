"""`paygate reconcile --bank B --date D [--apply] [--json]`: asks the running gateway (the one
`paygate up` wrote `.paygate/run.json` for) to reconcile, and prints the report."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

import aiohttp
import orjson

from gateway.client import AdminClient, ApiResponse
from gateway.recon.table import render

NOT_RUNNING = 2  # exit status when there is no gateway to ask
TIMEOUT_S = 120.0


async def _post(gateway_url: str, token: str, body: dict[str, Any]) -> ApiResponse:
    async with AdminClient(gateway_url, token, timeout_s=TIMEOUT_S) as admin:
        return await admin.post("/admin/reconcile", body)


def reconcile_command(
    info: dict[str, Any], bank_id: str, day: str, *, apply: bool, as_json: bool,
    out: TextIO = sys.stdout, err: TextIO = sys.stderr,
) -> int:  # fmt: skip
    """0 on a report, 1 when the gateway refused, NOT_RUNNING when nothing answered."""
    url = str(info["gateway_url"])
    body = {"bank_id": bank_id, "date": day, "apply": apply}
    try:
        resp = asyncio.run(_post(url, str(info["admin_token"]), body))
    except (aiohttp.ClientError, OSError) as exc:
        print(f"paygate reconcile: the gateway at {url} is not answering ({exc!r}); "
              "is `paygate up` running?", file=err)  # fmt: skip
        return NOT_RUNNING
    data = resp.json() if resp.body else None
    if resp.status != 200 or not isinstance(data, dict):
        error = data.get("error", {}) if isinstance(data, dict) else {}
        print(f"paygate reconcile: {resp.status} {error.get('code', '')}: "
              f"{error.get('message', resp.body[:200])}", file=err)  # fmt: skip
        return 1
    if as_json:
        out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(render(data))
    return 0

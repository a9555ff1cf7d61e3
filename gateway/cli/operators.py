"""`paygate operator add NAME --role R`: a console operator (SPEC 17); and the first admin
that `paygate up` makes when there is none, whose password the state directory keeps."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway.settings import Settings

FIRST_ADMIN = "admin"
FIRST_ADMIN_FILE = "console-admin.json"  # {"user", "password"}, mode 600


def write_secret_file(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (mode 600 from the start, then renamed into
    place, so no reader ever sees it half written or readable by others)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


async def first_admin(conn: Any, state_dir: Path) -> dict[str, str | None]:
    """The console login for run.json: a new `admin` when no admin exists (its password kept
    in the state directory, mode 600); else the kept one while it still signs in."""
    from gateway.operators import passwords, repo

    kept_file = state_dir / FIRST_ADMIN_FILE
    if not await repo.any_admin(conn):
        password = passwords.new_password()
        if await conn.fetchval("SELECT 1 FROM operators WHERE name = $1", FIRST_ADMIN):
            await repo.set_password(conn, FIRST_ADMIN, password)  # demoted: not an admin now
            await conn.execute("UPDATE operators SET role = 'admin' WHERE name = $1", FIRST_ADMIN)
        else:
            await repo.add(conn, FIRST_ADMIN, "admin", password)
        write_secret_file(kept_file, orjson.dumps({"user": FIRST_ADMIN, "password": password}))
        return {"user": FIRST_ADMIN, "password": password}
    if kept_file.exists():
        kept = orjson.loads(kept_file.read_bytes())
        stored = await conn.fetchval(
            "SELECT password_hash FROM operators WHERE name = $1", kept["user"]
        )
        if stored is not None and passwords.verify_password(stored, kept["password"]):
            return {"user": kept["user"], "password": kept["password"]}
    return {"user": FIRST_ADMIN, "password": None}  # changed since: not ours to show


def database_url(settings: Settings) -> str | None:
    """PAYGATE_DATABASE_URL, else the running `paygate up`'s (its run.json)."""
    if settings.database_url:
        return settings.database_url
    run_file = settings.state_dir / "run.json"
    if run_file.exists():
        url: str = orjson.loads(run_file.read_bytes())["database_url"]
        return url
    return None


def cmd_operator_add(settings: Settings, name: str, role: str, password_file: Path | None) -> int:
    import asyncpg

    from gateway.operators import passwords, repo

    url = database_url(settings)
    if url is None:
        print("paygate operator: no database: run `paygate up` first or set "
              "PAYGATE_DATABASE_URL", file=sys.stderr)  # fmt: skip
        return 2
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").strip()
        shown = None
    else:
        password = shown = passwords.new_password()

    async def add() -> None:
        conn = await asyncpg.connect(url)
        try:
            await repo.add(conn, name, role, password)
        finally:
            await conn.close()

    try:
        asyncio.run(add())
    except (ValueError, repo.OperatorExists) as exc:
        print(f"paygate operator: {exc}", file=sys.stderr)
        return 2
    print(f"operator {name} added with role {role}")
    if shown is not None:
        print(f"one-time password (shown once, not stored): {shown}")
    return 0

"""Imports point down only (ARCHITECTURE.md "Map", STYLE.md "Floors").

Every module of the packages below is given a floor; a module may import its own floor and
the floors beneath it, never one above. The imports are read statically with `ast`, all of
them: at module level, under `if TYPE_CHECKING:` and inside functions. No two modules may
import each other, however long the way round; and the domain packages that import each
other sideways (payouts, b2b, accounts, collection, recon, workers) do it one way only: no
circle between them either.

| floor | modules                                                     | may import        |
|-------|-------------------------------------------------------------|-------------------|
| 6     | gateway.cli, gateway.__main__, gateway.preflight (commands  | everything below  |
|       | and what they check before starting)                        |                   |
| 5     | loadtest (bench, demo, scenarios, the load generator)       | floors 0-4        |
| 4     | gateway.api, gateway.console (the HTTP layer)               | floors 0-3        |
| 3     | the domain: gateway.payouts, b2b, accounts, collection,     | floors 0-2, and   |
|       | recon, workers, merchants, notifications, outbox,           | each other        |
|       | system_gauges, demo_merchants, operators                    | (sideways)        |
| 2     | gateway.ledger, channels (with the bank simulator), risk    | floors 0-1 (see   |
|       |                                                             | below)            |
| 1     | gateway.storage, gateway.contract (the request bodies),     | floor 0, and each |
|       | settings, metrics, logs, fingerprint, batching, http1,      | other             |
|       | http1_server, server, ports, supervisor, state_lock, client |                   |
|       | (process and wire plumbing that knows no domain)            |                   |
| 0     | protocol (signing, keys, the simulated clock, ids, errors)  | nothing of ours   |

Below the gateway, tighter still: `channels` and `risk` import only `protocol` and
themselves (metrics reach the bank client as a `channels.recorder.BankRecorder` passed in),
and `channels.bank_sim` (the simulated bank, a process of its own) only `protocol` and
itself, as a real bank shares only the protocol with us.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("protocol", "gateway", "channels", "risk", "loadtest")

# Longest prefix wins.
FLOORS: dict[str, int] = {
    "protocol": 0,
    "gateway.storage": 1,
    "gateway.contract": 1,
    "gateway.settings": 1,
    "gateway.metrics": 1,
    "gateway.logs": 1,
    "gateway.fingerprint": 1,
    "gateway.batching": 1,
    "gateway.http1": 1,
    "gateway.http1_server": 1,
    "gateway.server": 1,
    "gateway.ports": 1,
    "gateway.supervisor": 1,
    "gateway.state_lock": 1,
    "gateway.client": 1,
    "gateway.ledger": 2,
    "channels": 2,
    "risk": 2,
    "gateway.payouts": 3,
    "gateway.b2b": 3,
    "gateway.accounts": 3,
    "gateway.collection": 3,
    "gateway.recon": 3,
    "gateway.workers": 3,
    "gateway.merchants": 3,
    "gateway.notifications": 3,
    "gateway.outbox": 3,
    "gateway.system_gauges": 3,
    "gateway.demo_merchants": 3,
    "gateway.operators": 3,
    "gateway.api": 4,
    "gateway.console": 4,
    "loadtest": 5,
    "gateway.cli": 6,  # the package: every command group's module
    "gateway.__main__": 6,
    "gateway.preflight": 6,
}
# Sideways imports among these packages never go round in a circle.
DOMAIN = tuple(
    f"gateway.{p}" for p in ("payouts", "b2b", "accounts", "collection", "recon", "workers")
)
# Modules that may import only these (and third-party libraries).
CONFINED: dict[str, tuple[str, ...]] = {
    "protocol": ("protocol",),
    "channels": ("protocol", "channels"),
    "channels.bank_sim": ("protocol", "channels.bank_sim"),
    "risk": ("protocol", "risk"),
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = path
    return mods


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(name: str, path: Path, mods: dict[str, Path]) -> Iterator[str]:
    """Every module of ours that `name` imports, wherever the import statement stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _known(alias.name, mods)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = _package_of(name, path).split(".")
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in mods else next(_known(base, mods), "")


def _known(name: str, mods: dict[str, Path]) -> Iterator[str]:
    """The module of ours that `name` is (or lies in), if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in mods:
            yield candidate
            return
        parts.pop()


def _prefix_match(name: str, table: Collection[str]) -> str | None:
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in table:
            return prefix
    return None


def floor_of(name: str) -> int | None:
    if name == "gateway":  # the package's own __init__ (empty); its modules each have a floor
        return 0
    prefix = _prefix_match(name, FLOORS)
    return None if prefix is None else FLOORS[prefix]


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {
        name: {t for t in _imports(name, path, mods) if t and t != name}
        for name, path in mods.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_floor() -> None:
    assert [m for m in _graph() if floor_of(m) is None] == []


def test_imports_point_down_only() -> None:
    upward = []
    for src, targets in sorted(_graph().items()):
        for dst in sorted(targets):
            s, d = floor_of(src), floor_of(dst)
            if s is not None and d is not None and d > s:
                upward.append(f"{src} (floor {s}) -> {dst} (floor {d})")
            confined = _prefix_match(src, CONFINED)
            if confined is not None and _prefix_match(dst, CONFINED[confined]) is None:
                upward.append(f"{src} -> {dst} (may import only {', '.join(CONFINED[confined])})")
    assert upward == [], f"{len(upward)} imports point up:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], f"{len(cycles)} import cycles:\n" + "\n".join(map(str, cycles))


def test_domain_packages_import_each_other_one_way() -> None:
    between: dict[str, set[str]] = {}
    for src, targets in _graph().items():
        a = _prefix_match(src, DOMAIN)
        for dst in targets:
            b = _prefix_match(dst, DOMAIN)
            if a is not None and b is not None and a != b:
                between.setdefault(a, set()).add(b)
    cycles = _cycles(between)
    assert cycles == [], f"domain packages in a circle: {cycles}"

"""One process's counters (requests by route, SQL statements by hop), in Prometheus text.

Every Paygate process owns one `Metrics`, created at start-up and passed down. SQL statements
are counted by asyncpg's query logger and attributed to the *hop* (accept, callback,
dispatch, poll, notify, ...) that the running task declared with `in_hop`, so the benchmark
can say how many statements each hop makes per payout. The figures are per process: with
`--workers N` each gateway process answers `/metrics` for itself (`paygate_process_pid`
tells them apart).
"""

from __future__ import annotations

import os
from collections import Counter
from contextvars import ContextVar
from typing import Any

# The hop the current task is working for; asyncpg's logger callback runs in a copy of the
# context of the task that ran the statement, so it sees the task's hop.
_HOP: ContextVar[str] = ContextVar("paygate_hop", default="other")

Labels = tuple[tuple[str, str], ...]


def in_hop(hop: str) -> None:
    """Attribute the current task's (and its future child tasks') statements to `hop`."""
    _HOP.set(hop)


def current_hop() -> str:
    return _HOP.get()


class Metrics:
    def __init__(self, process: str) -> None:
        self.process = process
        self._counts: Counter[tuple[str, Labels]] = Counter()
        self._help: dict[str, str] = {}

    def inc(self, name: str, n: int = 1, **labels: str) -> None:
        self._counts[(name, tuple(sorted(labels.items())))] += n

    def describe(self, name: str, text: str) -> None:
        self._help[name] = text

    def value(self, name: str, **labels: str) -> int:
        return self._counts[(name, tuple(sorted(labels.items())))]

    def on_query(self, record: Any) -> None:
        """asyncpg query logger: one statement (one round trip) for the current hop."""
        self._counts[("paygate_sql_statements_total", (("hop", _HOP.get()),))] += 1

    def render(self) -> str:
        lines = [
            "# TYPE paygate_process_pid gauge",
            f'paygate_process_pid{{process="{self.process}"}} {os.getpid()}',
        ]
        by_name: dict[str, list[tuple[Labels, int]]] = {}
        for (name, labels), n in sorted(self._counts.items()):
            by_name.setdefault(name, []).append((labels, n))
        for name, rows in by_name.items():
            if name in self._help:
                lines.append(f"# HELP {name} {self._help[name]}")
            lines.append(f"# TYPE {name} counter")
            for labels, n in rows:
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in (("process", self.process),
                                                                    *labels))  # fmt: skip
                lines.append(f"{name}{{{text}}} {n}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Samples of a Prometheus text page (what `render` writes): {(name, labels): value}."""
    out: dict[tuple[str, Labels], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels: list[tuple[str, str]] = []
        for part in rest.rstrip("}").split(","):
            if "=" in part:
                k, _, v = part.partition("=")
                labels.append((k, v.strip('"')))
        out[(name, tuple(sorted(labels)))] = float(value)
    return out

"""Settings read from PAYGATE_* environment variables."""

from __future__ import annotations

import pytest

from gateway.settings import Settings


def test_round_pauses_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYGATE_DISPATCH_IDLE_MS", raising=False)
    monkeypatch.delenv("PAYGATE_NOTIFY_IDLE_MS", raising=False)
    defaults = Settings.from_env()
    assert (defaults.dispatch_idle_ms, defaults.notify_idle_ms) == (100.0, 50.0)
    monkeypatch.setenv("PAYGATE_DISPATCH_IDLE_MS", "7.5")
    monkeypatch.setenv("PAYGATE_NOTIFY_IDLE_MS", "9")
    s = Settings.from_env()
    assert (s.dispatch_idle_ms, s.notify_idle_ms) == (7.5, 9.0)
    assert Settings.from_env(dispatch_idle_ms=3.0).dispatch_idle_ms == 3.0  # a flag wins

"""hop_cost refuses to run two checkouts on one external store: both systems would write the
same database and each would be charged the other's PostgreSQL CPU."""

from __future__ import annotations

import pytest

from loadtest.bench import hop_cost


@pytest.mark.parametrize("name", ["PAYGATE_DATABASE_URL", "PAYGATE_REDIS_URL"])
def test_two_checkouts_on_one_external_store_are_refused(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PAYGATE_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAYGATE_REDIS_URL", raising=False)
    monkeypatch.setenv(name, "postgresql://127.0.0.1:1/x")
    with pytest.raises(SystemExit) as exit_:
        hop_cost.main(["before=.", "after=."])
    assert exit_.value.code == 2
    assert name in capsys.readouterr().err

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


def test_env_settings_go_to_their_checkout_only() -> None:
    extra = hop_cost.extra_env(
        ["waits:PAYGATE_ADMISSION_BATCH_WAIT_MS=1", "waits:PAYGATE_GENERIC_PLANS=0"],
        ["main", "waits"],
    )
    assert extra == {
        "main": {},
        "waits": {"PAYGATE_ADMISSION_BATCH_WAIT_MS": "1", "PAYGATE_GENERIC_PLANS": "0"},
    }


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--env", "other:PAYGATE_X=1", "main=.", "waits=."], "no checkout labelled 'other'"),
        (["--env", "waits:HOME=/", "main=.", "waits=."], "LABEL:PAYGATE_NAME=VALUE"),
        (["--env", "waits:PAYGATE_X", "main=.", "waits=."], "LABEL:PAYGATE_NAME=VALUE"),
        (["main=.", "main=../other"], "a label of its own"),
    ],
)
def test_malformed_env_or_labels_are_refused(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        hop_cost.main(argv)
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err

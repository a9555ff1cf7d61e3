"""One bank's rules: reproducible draws, scripts, idempotent refs, capacity and maintenance."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from channels.bank_sim.bank import Bank, Busy, InMaintenance, RefConflict, bank_rng
from channels.bank_sim.bucket import TokenBucket
from channels.bank_sim.fate import Fate, batch_wait_ms, draw_fate
from channels.bank_sim.nonces import NonceCache
from channels.bank_sim.presets import BankIdentity, preset_profile
from channels.bank_sim.profile import BankProfile, Script, Window
from channels.bank_sim.records import IllegalTransition, move
from channels.bank_sim.schemas import Payee, PayoutSubmission

ICBC = BankIdentity("102", "ICBC", "bank")
IBPS = BankIdentity("ibps", "IBPS", "interbank")
# 2026-11-25 08:00 UTC is 16:00 business time (UTC+8).
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def payee(account_no: str = "6222020200112233445", bank_code: str = "102100099996") -> Payee:
    return Payee(account_no, "Zhang San", bank_code, "personal")


def submission(ref: str, amount: int = 10_000, **payee_kw: str) -> PayoutSubmission:
    return PayoutSubmission(ref=ref, amount=amount, currency="CNY", payee=payee(**payee_kw))


def fates(seed: int | None, preset: str = "fault_heavy", n: int = 200) -> list[Fate]:
    bank = Bank(preset_profile(preset, ICBC), bank_rng(seed, "102"))
    out = []
    for i in range(n):
        fate = bank.submit(submission(f"po_{i}"), NOW).fate
        assert fate is not None
        out.append(fate)
    return out


def test_same_seed_gives_the_same_fates_and_another_seed_does_not() -> None:
    assert fates(7) == fates(7)
    assert fates(7) != fates(8)


def test_each_bank_draws_its_own_sequence() -> None:
    assert bank_rng(7, "102").random() != bank_rng(7, "103").random()
    assert bank_rng(7, "102").random() == bank_rng(7, "102").random()


def test_fault_heavy_draws_every_kind_of_fate() -> None:
    drawn = fates(11, n=2_000)
    outcomes = {f.outcome for f in drawn}
    assert outcomes >= {"succeeded", "account_not_found", "account_frozen", "account_closed"}
    assert {f.callback_fault for f in drawn} == {
        None,
        "duplicate",
        "out_of_order",
        "lost",
        "very_late",
    }
    assert any(f.returned for f in drawn)
    assert all(f.outcome == "succeeded" for f in drawn if f.returned)


def test_scripts_override_the_draws_for_their_payee_only() -> None:
    script = Script(outcome="over_bank_limit", callback="lost", returned=False)
    profile = msgspec.structs.replace(preset_profile("instant", ICBC), scripted={"acct-x": script})
    rng = bank_rng(1, "102")
    fate = draw_fate(profile, rng, payee("acct-x"), 0.0)
    assert (fate.outcome, fate.callback_fault, fate.returned) == ("over_bank_limit", "lost", False)
    other = draw_fate(profile, rng, payee("acct-y"), 0.0)
    assert (other.outcome, other.callback_fault) == ("succeeded", None)


def test_single_bank_fails_other_banks_payees_and_interbank_does_not() -> None:
    foreign = payee(bank_code="105100000017")
    rng = bank_rng(1, "x")
    assert draw_fate(preset_profile("instant", ICBC), rng, foreign, 0.0).outcome == (
        "invalid_bank_code"
    )
    assert draw_fate(preset_profile("instant", IBPS), rng, foreign, 0.0).outcome == "succeeded"


def test_batch_mode_waits_for_the_next_interval_boundary() -> None:
    batch = BankProfile(payout_mode="batch", batch_interval_ms=60_000)
    assert batch_wait_ms(batch, 120_000.0) == 0.0
    assert batch_wait_ms(batch, 120_001.0) == 59_999.0
    assert batch_wait_ms(BankProfile(), 120_001.0) == 0.0


def test_replay_counts_submissions_and_a_changed_payout_conflicts() -> None:
    bank = Bank(preset_profile("instant", ICBC), bank_rng(1, "102"))
    first = bank.submit(submission("po_1"), NOW)
    again = bank.submit(submission("po_1"), NOW)
    assert again.replayed and again.fate is None
    assert again.record is first.record
    assert first.record.submissions == 2
    assert first.record.bank_ref == "ICBC2026112500000001"
    with pytest.raises(RefConflict):
        bank.submit(submission("po_1", amount=1), NOW)
    with pytest.raises(RefConflict):
        bank.submit(submission("po_1", account_no="other"), NOW)
    assert bank.counters.submissions == 2


def test_business_date_follows_utc_plus_8() -> None:
    bank = Bank(preset_profile("instant", ICBC), bank_rng(1, "102"))
    late_evening_utc = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # 01:00 on the 26th in CST
    record = bank.submit(submission("po_1"), late_evening_utc).record
    assert record.business_date.isoformat() == "2026-11-26"


def test_maintenance_window_uses_business_time_and_refuses_before_capacity() -> None:
    profile = BankProfile(maintenance=[Window("15:30", "16:30")], tps=1)
    bank = Bank(profile, bank_rng(1, "102"))
    with pytest.raises(InMaintenance):
        bank.admit(NOW)  # 16:00 CST
    bank.admit(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))  # 17:00 CST
    assert bank.counters.refused_maintenance == 1


def test_over_capacity_is_busy_with_a_wait() -> None:
    bank = Bank(BankProfile(tps=2), bank_rng(1, "102"))
    bank.admit(NOW)
    bank.admit(NOW)
    with pytest.raises(Busy) as info:
        bank.admit(NOW)
    assert 0 < info.value.retry_after_s <= 0.5
    assert bank.counters.refused_busy == 1


def test_token_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(10, now_s=lambda: now[0])
    assert [bucket.take() for _ in range(10)] == [0.0] * 10
    assert bucket.take() == pytest.approx(0.1)
    now[0] += 0.35
    assert [bucket.take() for _ in range(3)] == [0.0] * 3
    assert bucket.take() > 0
    now[0] += 100
    bucket.set_rate(2)
    assert [bucket.take() for _ in range(2)] == [0.0, 0.0]
    assert bucket.take() > 0


def test_token_bucket_takes_as_many_of_n_tokens_as_it_holds_at_once() -> None:
    now = [100.0]
    bucket = TokenBucket(10, now_s=lambda: now[0])
    assert bucket.take_up_to(4) == (4, 0.0)
    taken, wait_s = bucket.take_up_to(8)
    assert taken == 6
    assert wait_s == pytest.approx(0.1)
    assert bucket.take_up_to(0) == (0, 0.0)
    now[0] += 0.25  # 2.5 tokens back: half a token stays for later
    assert bucket.take_up_to(3)[0] == 2
    now[0] += 0.0625  # (exact in binary) the half token and 0.625 more
    assert bucket.take_up_to(1) == (1, 0.0)


def test_admit_many_admits_the_first_that_fit_and_counts_the_rest_busy() -> None:
    bank = Bank(BankProfile(tps=3), bank_rng(1, "102"))
    admitted, wait_s = bank.admit_many(NOW, 5)
    assert admitted == 3 and wait_s > 0
    assert bank.counters.refused_busy == 2
    with pytest.raises(Busy):
        bank.admit(NOW)
    assert bank.counters.refused_busy == 3
    closed = Bank(BankProfile(maintenance_now=True), bank_rng(1, "102"))
    with pytest.raises(InMaintenance):
        closed.admit_many(NOW, 4)
    assert closed.counters.refused_maintenance == 4


def test_nonce_cache_refuses_a_reuse_forgets_after_the_window_and_stays_bounded() -> None:
    now = [0.0]
    cache = NonceCache(window_s=600, max_entries=3, now_s=lambda: now[0])
    assert cache.first_use("paygate", "n1")
    assert not cache.first_use("paygate", "n1")
    assert cache.first_use("other", "n1")
    now[0] = 601
    assert cache.first_use("paygate", "n1")
    for i in range(10):
        assert cache.first_use("paygate", f"x{i}")
    assert len(cache) == 3


def test_record_status_moves_only_along_the_table() -> None:
    bank = Bank(preset_profile("instant", ICBC), bank_rng(1, "102"))
    record = bank.submit(submission("po_1"), NOW).record
    with pytest.raises(IllegalTransition):
        move(record, "returned", NOW, "account_closed", "账户已销户")
    move(record, "failed", NOW, "account_frozen", "账户冻结")
    with pytest.raises(IllegalTransition):
        move(record, "succeeded", NOW)
    assert record.completed_at == NOW

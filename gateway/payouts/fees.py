"""The payout fee: `fee_fixed + amount × fee_bps / 10000`, in integer fen.

Rounding rule (the only one): the proportional part is rounded UP to the next whole fen, so
the platform never charges less than the stated rate. Integer arithmetic only.
"""

from __future__ import annotations

BPS_DENOMINATOR = 10_000


def fee_for(amount_fen: int, fee_fixed_fen: int, fee_bps: int) -> int:
    assert amount_fen > 0 and fee_fixed_fen >= 0 and 0 <= fee_bps <= BPS_DENOMINATOR
    proportional = -(-(amount_fen * fee_bps) // BPS_DENOMINATOR)  # ceiling division
    return fee_fixed_fen + proportional

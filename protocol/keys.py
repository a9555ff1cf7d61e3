"""Bank keys: the shared HMAC secret between the gateway and each simulated bank.

Both sides derive a bank's key from one master secret (settings.bank_master_secret), so the
gateway and the simulator agree without a key exchange. The gateway signs its requests to
bank B with key id GATEWAY_KEY_ID and B's secret; bank B signs its callbacks with key id B.
"""

from __future__ import annotations

import hashlib
import hmac

GATEWAY_KEY_ID = "paygate"


def bank_secret(master_secret: str, bank_id: str) -> str:
    return hmac.new(master_secret.encode(), f"bank:{bank_id}".encode(), hashlib.sha256).hexdigest()

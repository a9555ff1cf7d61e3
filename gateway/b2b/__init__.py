"""B2B payments in (充值): create, bank notification, clearing (SPEC 7)."""

"""Reconciliation (对账, SPEC 10): bank statements against the gateway's books; exceptions."""

"""Merchant notifications: the outbox delivered to notify_url (SPEC 10)."""

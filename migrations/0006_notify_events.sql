-- Which events a merchant is sent (SPEC 11, notify_events): a list of event types or {'*'},
-- by default the final ones. Every event is still recorded; one the merchant did not ask for
-- is written 'skipped', outside the pending indexes, so the notifier never sees it (unless
-- the merchant asks for it with redeliver, which makes it pending).
ALTER TABLE merchants
    ADD COLUMN notify_events text[] NOT NULL
        DEFAULT ARRAY['payout.succeeded', 'payout.failed', 'payout.returned', 'payout.rejected',
                      'payout.review_pending', 'b2b.cleared', 'b2b.failed', 'b2b.reversed']
        CHECK (cardinality(notify_events) BETWEEN 1 AND 32);

-- The inline check of 0001 under its generated name.
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_delivery_status_check;
ALTER TABLE outbox_events ADD CONSTRAINT outbox_events_delivery_status_check
    CHECK (delivery_status IN ('pending', 'delivered', 'failed', 'skipped'));

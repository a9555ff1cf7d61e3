-- SPEC 11's default notify_events now names collections' outcomes. Merchants still on the
-- old default (they never chose) get the new one; a merchant that chose keeps its choice.
ALTER TABLE merchants ALTER COLUMN notify_events
    SET DEFAULT ARRAY['payout.succeeded', 'payout.failed', 'payout.returned', 'payout.rejected',
                      'payout.review_pending', 'b2b.cleared', 'b2b.failed', 'b2b.reversed',
                      'collection.succeeded', 'collection.failed'];

UPDATE merchants
SET notify_events = ARRAY['payout.succeeded', 'payout.failed', 'payout.returned',
                          'payout.rejected', 'payout.review_pending', 'b2b.cleared', 'b2b.failed',
                          'b2b.reversed', 'collection.succeeded', 'collection.failed']
WHERE notify_events = ARRAY['payout.succeeded', 'payout.failed', 'payout.returned',
                            'payout.rejected', 'payout.review_pending', 'b2b.cleared',
                            'b2b.failed', 'b2b.reversed'];

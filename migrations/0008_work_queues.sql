-- Work queues out of the big tables (issue 11). A payout row changes status two or three
-- times, an event row once or twice; as long as no indexed column changes, PostgreSQL
-- updates such a row in place on its page (a HOT update: no new index entries, old versions
-- pruned as the page is read). The columns that workers scan by (what is due, what to poll,
-- what waits for review or delivery) change on every step, so they move to narrow queue
-- tables that hold only the open work: a row is deleted when its work is done.

-- The open payouts and where each stands: waiting for an operator's review, for dispatch
-- (queued), or for its bank (sending, acked, unknown). A final payout has no row.
CREATE TABLE payout_queue (
    payout_id    text PRIMARY KEY,
    state        text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('review', 'queued', 'sending', 'acked', 'unknown')),
    attempts     integer NOT NULL DEFAULT 0,      -- submissions made
    next_at      timestamptz NOT NULL DEFAULT now(),  -- queued: due for dispatch
    poll_at      timestamptz,                     -- sending/acked/unknown: when to query
    poll_count   integer NOT NULL DEFAULT 0,
    submitted_at timestamptz
);
-- A queue's rows churn (every step rewrites or deletes one) while few are live: vacuum it
-- after a thousand dead rows, not a fifth of the table, and at full speed.
ALTER TABLE payout_queue SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX payout_queue_due ON payout_queue (next_at) WHERE state = 'queued';
CREATE INDEX payout_queue_poll ON payout_queue (poll_at)
    WHERE state IN ('sending', 'acked', 'unknown');
CREATE INDEX payout_queue_review ON payout_queue (payout_id) WHERE state = 'review';

INSERT INTO payout_queue (payout_id, state, attempts, next_at, poll_at, poll_count, submitted_at)
SELECT id,
       CASE WHEN status = 'review_pending' THEN 'review' ELSE dispatch_state END,
       dispatch_attempts, next_dispatch_at, poll_at, poll_count, submitted_at
FROM payouts
WHERE status IN ('review_pending', 'accepted', 'processing');

DROP INDEX payouts_to_dispatch;
DROP INDEX payouts_to_poll;
DROP INDEX payouts_review;
-- Status-filtered lists walk the merchant's payouts by id instead (payouts_merchant_id).
DROP INDEX payouts_merchant_status;
-- Unused: nothing looks payouts up by bank.
DROP INDEX payouts_bank_ref;
ALTER TABLE payouts
    DROP COLUMN dispatch_state,
    DROP COLUMN dispatch_attempts,
    DROP COLUMN next_dispatch_at,
    DROP COLUMN poll_at,
    DROP COLUMN poll_count,
    DROP COLUMN submitted_at;
-- Room on each page for a payout's later versions (HOT updates).
ALTER TABLE payouts SET (fillfactor = 60);

-- Events waiting for delivery (pending), one row each; the event row keeps the outcome.
CREATE TABLE notification_queue (
    event_id        text PRIMARY KEY,
    merchant_id     text NOT NULL,
    object_id       text NOT NULL,
    sequence        integer NOT NULL,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE notification_queue SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX notification_queue_due ON notification_queue (next_attempt_at);
-- One object's events go in sequence: an event waits while an earlier one is queued.
CREATE INDEX notification_queue_object ON notification_queue (object_id, sequence);

INSERT INTO notification_queue (event_id, merchant_id, object_id, sequence, next_attempt_at)
SELECT id, merchant_id, object_id, sequence, next_attempt_at
FROM outbox_events WHERE delivery_status = 'pending';

DROP INDEX outbox_due;
DROP INDEX outbox_object_pending;
ALTER TABLE outbox_events DROP COLUMN next_attempt_at;
-- Room for the delivery outcome's version on the event's own page (HOT).
ALTER TABLE outbox_events SET (fillfactor = 60);

-- Merchant notifications (SPEC 10, issue 7): delivery bookkeeping on the outbox and every
-- attempt recorded.
ALTER TABLE outbox_events
    ADD COLUMN delivered_at timestamptz,
    ADD COLUMN last_error   text;

CREATE TABLE notification_attempts (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL REFERENCES outbox_events (id),
    attempt      integer NOT NULL CHECK (attempt >= 1),
    attempted_at timestamptz NOT NULL,
    sim_at       timestamptz NOT NULL,  -- the simulated time of the attempt (the schedule's)
    http_status  integer,
    latency_ms   integer NOT NULL CHECK (latency_ms >= 0),
    error        text
);
CREATE INDEX notification_attempts_event ON notification_attempts (event_id, id);

-- Delivery goes in sequence per object: an event waits while an earlier one is pending.
CREATE INDEX outbox_object_pending ON outbox_events (object_id, sequence)
    WHERE delivery_status = 'pending';

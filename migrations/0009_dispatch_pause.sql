-- An operator's switch to stop sending payouts to banks (an incident at the bank side, or the
-- benchmark measuring acceptance alone): accepts go on, payouts wait in the queue, nothing is
-- lost; switched back on, the dispatcher takes them oldest first.
CREATE TABLE dispatch_control (
    id         integer PRIMARY KEY CHECK (id = 1),
    paused     boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dispatch_control (id) VALUES (1);

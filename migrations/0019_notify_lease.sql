-- The notifier's lease on a queued event moves to a column of its own (issue 25). Leasing
-- used to push `next_attempt_at` (indexed: notification_queue_due) to the lease's end, so
-- every delivery rewrote the row and its three index entries (a non-HOT update). Now the
-- lease writes `leased_until`, which no index names: the row changes in place on its page
-- (HOT), and the due scan skips leased rows by a filter (there are at most the notifiers'
-- deliveries in flight). `next_attempt_at` changes only when an attempt failed and the
-- event waits for its next one. An expired lease (a notifier that died) is due again.
ALTER TABLE notification_queue ADD COLUMN leased_until timestamptz;
-- Room on each page for the leased versions (HOT needs it on the same page): a lease comes
-- milliseconds after the insert, while the row's earlier version cannot be pruned yet, so a
-- page keeps half its room for them (at 70 a third of the leases found none in a bench run).
-- The table holds only what is pending: the room costs little.
ALTER TABLE notification_queue SET (fillfactor = 50);

-- The poller's lease on an order waiting for its bank moves to a column of its own (issue 25),
-- as the notifier's did (0019). Leasing used to push `poll_at` (indexed: *_queue_poll) to the
-- lease's end, a non-HOT update writing the row's index entries again at every poll; now the
-- lease writes `leased_until` (and counts the poll), which no index names: a HOT update. The
-- poll scan skips leased rows by a filter (at most the pollers' queries in flight). The
-- answer's bookkeeping sets `poll_at` again and ends the lease; a bookkeeping that leaves the
-- state as it is keeps the lease, so the order is asked again when the lease runs out (as it
-- was when the lease was `poll_at`). An expired lease (a poller that died) is due again.
ALTER TABLE payout_queue ADD COLUMN leased_until timestamptz;
ALTER TABLE collection_queue ADD COLUMN leased_until timestamptz;
-- Room on each page for the leased version (HOT needs it on the same page).
ALTER TABLE payout_queue SET (fillfactor = 50);
ALTER TABLE collection_queue SET (fillfactor = 50);

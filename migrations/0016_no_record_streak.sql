-- "The bank never received it" (issue 22): an order waiting for its bank is failed
-- `bank_no_record` only after the bank's own "no such order" on `bank_no_record_polls`
-- consecutive queries spread over at least `bank_no_record_min_s` of simulated time. The
-- streak lives on the queue row (poll_count counts every lease, whatever the answer): how
-- many such answers in a row, and the simulated time of the first. Any other answer, and
-- every new submission, starts it again.
ALTER TABLE payout_queue
    ADD COLUMN no_record_streak integer NOT NULL DEFAULT 0 CHECK (no_record_streak >= 0),
    ADD COLUMN no_record_since timestamptz;
ALTER TABLE collection_queue
    ADD COLUMN no_record_streak integer NOT NULL DEFAULT 0 CHECK (no_record_streak >= 0),
    ADD COLUMN no_record_since timestamptz;

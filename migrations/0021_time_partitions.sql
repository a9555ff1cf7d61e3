-- Time partitions (SPEC 15): the tables that grow without bound are partitioned by month with
-- PostgreSQL's declarative partitioning, by RANGE of their time-ordered ids (protocol/ids.py:
-- an id compares like its creation time, so a month is an id range and the primary key stays
-- the id). Postings follow their journal entry's month (entry_id), notification attempts their
-- event's (event_id): a month's rows and what they reference are in the same month's partitions.
--
-- What a partitioned table cannot hold is a UNIQUE key without the partition key. The
-- idempotency keys (merchant_id, merchant_order_id) of payouts, transfers and collections move
-- to `order_keys`, one unpartitioned row per object written by a trigger in the same
-- statement (a second insert of a key fails with unique_violation, as the tables' own
-- constraints did). The outbox's UNIQUE (object_id, sequence) is dropped: an event's sequence
-- is its object's version after the change, taken under the object's row lock in the same
-- transaction (two events cannot get one version); the ledger check counts duplicates
-- (`events_one_per_sequence`).
--
-- Partitions are UTC months named <table>_pYYYY_MM, plus <table>_history below the first month
-- this migration made. `ensure_partitions(n)` creates the months up to n ahead; the worker calls
-- it at start and every hour (gateway/workers/partitions.py), so a month exists long before its
-- first row. Old months are detached by `detach_month` (ARCHITECTURE.md, docs/SCALE.md).

CREATE TABLE partitioned_tables (
    name       text PRIMARY KEY,
    key_column text NOT NULL,     -- the time-ordered id the table is partitioned by
    id_prefix  text NOT NULL,     -- that id's prefix (po, je, evt, ...)
    storage    text NOT NULL,     -- WITH (...) of each partition ('' for none)
    rank       integer NOT NULL,  -- detach order: referencing tables (1) before referenced (2)
    -- The table whose id the key is: each month's partition has a foreign key to that table's
    -- partition of the same month (the same bounds hold both). A key to the partitioned table
    -- itself would make every row's check route through the partitions (~a quarter of the
    -- accept rate with four postings a payout, measured), one to a plain table is an index probe.
    refers_to  text
);
INSERT INTO partitioned_tables (name, key_column, id_prefix, storage, rank, refers_to) VALUES
    ('notification_attempts', 'event_id', 'evt', '', 1, 'outbox_events'),
    ('postings', 'entry_id', 'je', '', 1, 'journal_entries'),
    ('outbox_events', 'id', 'evt', 'fillfactor=60', 2, NULL),
    ('journal_entries', 'id', 'je', '', 2, NULL),
    ('payouts', 'id', 'po', 'fillfactor=60', 2, NULL),
    ('transfers', 'id', 'tr', '', 2, NULL),
    ('collections', 'id', 'col', 'fillfactor=70', 2, NULL);

-- protocol.ids.floor_id in SQL: the smallest id with `prefix` made at or after `at`
-- (tests/integration/test_partitions.py holds the two equal).
CREATE FUNCTION id_floor(prefix text, at timestamptz) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    alphabet constant text := '0123456789abcdefghjkmnpqrstvwxyz';
    millis bigint := floor(extract(epoch FROM at) * 1000)::bigint;
    digits text := '';
BEGIN
    FOR i IN 1..10 LOOP
        digits := substr(alphabet, (millis & 31)::integer + 1, 1) || digits;
        millis := millis >> 5;
    END LOOP;
    RETURN prefix || '_' || digits || repeat('0', 16);
END $$;

-- Creates the missing monthly partitions from `from_month` (default: this month) to
-- `months_ahead` months after this one; returns how many it made. Cheap when nothing is
-- missing (no lock on the tables). A month detached for archive is not made again. Each is made
-- as a plain table and then attached: ATTACH takes a lock on the table that inserts and updates
-- pass (SHARE UPDATE EXCLUSIVE), where CREATE TABLE ... PARTITION OF would stop them.
CREATE FUNCTION ensure_partitions(months_ahead integer, from_month timestamptz DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    t record;
    first_m timestamp := date_trunc('month', coalesce(from_month, now()) AT TIME ZONE 'UTC');
    last_m timestamp := date_trunc('month', now() AT TIME ZONE 'UTC')
                        + make_interval(months => months_ahead);
    m timestamp;
    part text;
    made integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(x'70617274'::bigint);  -- 'part': one creator at a time
    FOR t IN SELECT * FROM partitioned_tables ORDER BY rank DESC, name LOOP
        m := first_m;
        WHILE m <= last_m LOOP
            part := format('%s_p%s', t.name, to_char(m, 'YYYY_MM'));
            IF to_regclass(part) IS NULL THEN
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)%s',
                    part, t.name,
                    CASE WHEN t.storage = '' THEN '' ELSE format(' WITH (%s)', t.storage) END);
                IF t.refers_to IS NOT NULL THEN  -- made before it: ORDER BY rank DESC
                    EXECUTE format('ALTER TABLE %I ADD FOREIGN KEY (%I) REFERENCES %I (id)',
                        part, t.key_column, format('%s_p%s', t.refers_to, to_char(m, 'YYYY_MM')));
                END IF;
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                    t.name, part,
                    id_floor(t.id_prefix, m AT TIME ZONE 'UTC'),
                    id_floor(t.id_prefix, (m + interval '1 month') AT TIME ZONE 'UTC'));
                made := made + 1;
            END IF;
            m := m + interval '1 month';
        END LOOP;
    END LOOP;
    RETURN made;
END $$;

-- Converting: the foreign keys between the converted tables go first, each table is renamed,
-- made again partitioned with the same columns, defaults and checks, filled, and dropped; then
-- keys, indexes and foreign keys come back on the partitioned tables.
ALTER TABLE notification_attempts DROP CONSTRAINT notification_attempts_event_id_fkey;
ALTER TABLE postings DROP CONSTRAINT postings_entry_id_fkey;
ALTER TABLE recon_exceptions DROP CONSTRAINT recon_exceptions_adjustment_entry_id_fkey;

ALTER TABLE notification_attempts RENAME TO notification_attempts_unpartitioned;
ALTER TABLE postings RENAME TO postings_unpartitioned;
ALTER TABLE outbox_events RENAME TO outbox_events_unpartitioned;
ALTER TABLE journal_entries RENAME TO journal_entries_unpartitioned;
ALTER TABLE payouts RENAME TO payouts_unpartitioned;
ALTER TABLE transfers RENAME TO transfers_unpartitioned;
ALTER TABLE collections RENAME TO collections_unpartitioned;
-- The two referenced tables get their keys before their partitions are made (each month's
-- foreign keys need them); their old keys' names go out of the way.
ALTER INDEX journal_entries_pkey RENAME TO journal_entries_unpartitioned_pkey;
ALTER INDEX outbox_events_pkey RENAME TO outbox_events_unpartitioned_pkey;

CREATE TABLE notification_attempts (LIKE notification_attempts_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (event_id);
CREATE TABLE postings (LIKE postings_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (entry_id);
CREATE TABLE outbox_events (LIKE outbox_events_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (id);
CREATE TABLE journal_entries (LIKE journal_entries_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (id);
CREATE TABLE payouts (LIKE payouts_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (id);
CREATE TABLE transfers (LIKE transfers_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (id);
CREATE TABLE collections (LIKE collections_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (id);
ALTER TABLE journal_entries ADD PRIMARY KEY (id);
ALTER TABLE outbox_events ADD PRIMARY KEY (id);

-- Months from the oldest row there is to next month (ids are made a moment before the row's
-- created_at, so a row may sit in the month before its created_at's: a database with rows gets
-- a history partition below them for that). Few partitions: a statement pruned only when it
-- runs still opens and locks every partition of its tables (PostgreSQL 15), so empty months
-- far ahead cost every such statement; the worker makes next month hourly, long before it.
DO $$
DECLARE
    oldest timestamptz := least(
        (SELECT min(created_at) FROM journal_entries_unpartitioned),
        (SELECT min(created_at) FROM outbox_events_unpartitioned),
        (SELECT min(created_at) FROM payouts_unpartitioned),
        (SELECT min(created_at) FROM transfers_unpartitioned),
        (SELECT min(created_at) FROM collections_unpartitioned),
        now());
    first_m timestamp := date_trunc('month', oldest AT TIME ZONE 'UTC');
    t record;
BEGIN
    PERFORM ensure_partitions(1, oldest);
    IF oldest >= now() THEN
        RETURN;  -- no rows: nothing older than this month
    END IF;
    FOR t IN SELECT * FROM partitioned_tables ORDER BY rank DESC, name LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (MINVALUE) TO (%L)%s',
            t.name || '_history', t.name, id_floor(t.id_prefix, first_m AT TIME ZONE 'UTC'),
            CASE WHEN t.storage = '' THEN '' ELSE format(' WITH (%s)', t.storage) END);
        IF t.refers_to IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I ADD FOREIGN KEY (%I) REFERENCES %I (id)',
                t.name || '_history', t.key_column, t.refers_to || '_history');
        END IF;
    END LOOP;
END $$;

INSERT INTO journal_entries SELECT * FROM journal_entries_unpartitioned;
INSERT INTO postings SELECT * FROM postings_unpartitioned;
INSERT INTO outbox_events SELECT * FROM outbox_events_unpartitioned;
INSERT INTO notification_attempts SELECT * FROM notification_attempts_unpartitioned;
INSERT INTO payouts SELECT * FROM payouts_unpartitioned;
INSERT INTO transfers SELECT * FROM transfers_unpartitioned;
INSERT INTO collections SELECT * FROM collections_unpartitioned;

ALTER SEQUENCE postings_id_seq OWNED BY postings.id;
ALTER SEQUENCE notification_attempts_id_seq OWNED BY notification_attempts.id;
DROP TABLE notification_attempts_unpartitioned, postings_unpartitioned,
    outbox_events_unpartitioned, journal_entries_unpartitioned, payouts_unpartitioned,
    transfers_unpartitioned, collections_unpartitioned;

CREATE INDEX journal_entries_ref ON journal_entries (ref_id);

ALTER TABLE postings ADD PRIMARY KEY (entry_id, id);
-- (postings -> journal_entries: each month's partition to the same month's, see above)
ALTER TABLE postings ADD FOREIGN KEY (account) REFERENCES accounts (code);
CREATE INDEX postings_account ON postings (account);
CREATE INDEX postings_merchant ON postings (merchant_id, id) WHERE merchant_id IS NOT NULL;

CREATE INDEX outbox_merchant ON outbox_events (merchant_id, id);
CREATE INDEX outbox_object ON outbox_events (object_id, sequence);

ALTER TABLE notification_attempts ADD PRIMARY KEY (event_id, id);
-- (notification_attempts -> outbox_events: each month's partition to the same month's)

ALTER TABLE payouts ADD PRIMARY KEY (id);
ALTER TABLE payouts ADD FOREIGN KEY (merchant_id) REFERENCES merchants (id);
ALTER TABLE payouts ADD FOREIGN KEY (account_id) REFERENCES customer_accounts (id);
CREATE INDEX payouts_merchant_id ON payouts (merchant_id, id);

ALTER TABLE transfers ADD PRIMARY KEY (id);
ALTER TABLE transfers ADD FOREIGN KEY (merchant_id) REFERENCES merchants (id);
ALTER TABLE transfers ADD FOREIGN KEY (from_account) REFERENCES customer_accounts (id);
ALTER TABLE transfers ADD FOREIGN KEY (to_account) REFERENCES customer_accounts (id);
CREATE INDEX transfers_merchant_id ON transfers (merchant_id, id);

ALTER TABLE collections ADD PRIMARY KEY (id);
ALTER TABLE collections ADD FOREIGN KEY (merchant_id) REFERENCES merchants (id);
ALTER TABLE collections ADD FOREIGN KEY (account_id) REFERENCES customer_accounts (id);
CREATE INDEX collections_merchant_id ON collections (merchant_id, id);

ALTER TABLE recon_exceptions ADD FOREIGN KEY (adjustment_entry_id) REFERENCES journal_entries (id);

-- The idempotency keys.
CREATE TABLE order_keys (
    merchant_id       text NOT NULL,
    kind              text NOT NULL,   -- the object's table: payouts, transfers, collections
    merchant_order_id text NOT NULL,
    request_hash      text NOT NULL,
    object_id         text NOT NULL,
    PRIMARY KEY (merchant_id, kind, merchant_order_id)
);
INSERT INTO order_keys SELECT merchant_id, 'payouts', merchant_order_id, request_hash, id
    FROM payouts;
INSERT INTO order_keys SELECT merchant_id, 'transfers', merchant_order_id, request_hash, id
    FROM transfers;
INSERT INTO order_keys SELECT merchant_id, 'collections', merchant_order_id, request_hash, id
    FROM collections;

CREATE FUNCTION order_key_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_keys (merchant_id, kind, merchant_order_id, request_hash, object_id)
    VALUES (NEW.merchant_id, TG_ARGV[0], NEW.merchant_order_id, NEW.request_hash, NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER payouts_order_key BEFORE INSERT ON payouts
    FOR EACH ROW EXECUTE FUNCTION order_key_record('payouts');
CREATE TRIGGER transfers_order_key BEFORE INSERT ON transfers
    FOR EACH ROW EXECUTE FUNCTION order_key_record('transfers');
CREATE TRIGGER collections_order_key BEFORE INSERT ON collections
    FOR EACH ROW EXECUTE FUNCTION order_key_record('collections');

-- Archive: a month whose money is all settled detaches from every partitioned table at once
-- (`detach_month`). What the ledger check needs of it stays: each account's sum of the month's
-- postings goes to `archived_totals` (balances are the attached postings plus these), and each
-- payer's fronted-less-repaid sum of its collections to `archived_collection_advances`.
-- The detached tables stay, standalone and without foreign keys, for pg_dump and DROP.
CREATE TABLE archived_totals (
    account    text PRIMARY KEY REFERENCES accounts (code),
    amount_fen bigint NOT NULL
);
CREATE TABLE archived_collection_advances (
    merchant_id      text NOT NULL REFERENCES merchants (id),
    payer_account_no text NOT NULL,
    owed_fen         bigint NOT NULL,
    PRIMARY KEY (merchant_id, payer_account_no)
);
CREATE TABLE archived_months (
    month       date PRIMARY KEY,
    detached_at timestamptz NOT NULL DEFAULT now(),
    row_counts  jsonb NOT NULL
);

-- Detaches `month` (its first day, UTC) if its money is settled: the month ended a month ago
-- or more (a bank's return comes within days), no payout in it open, no collection pending,
-- no event of it waiting for delivery or queued, no open reconciliation exception about its
-- objects, no reconciliation adjustment entry in it. A fronted collection is not open (its
-- repayment is a later collection's). `now_at` is for tests. Refusals raise
-- 'object_not_in_prerequisite_state' (55000) saying what is open.
--
-- It locks the seven tables (ACCESS EXCLUSIVE, which DETACH needs anyway) in the order every
-- path takes them — an object, its entries, their postings, then a notification's attempts
-- before its event (the notifier's record_attempts) — so it waits for them, never deadlocks
-- with them (a CI run caught attempts after events), before it checks, so nothing can reopen the month between the check and the
-- detach; the counts are read before (a past month gets no new rows: ids are made now). Money
-- traffic waits while it runs: run it at a quiet hour (`paygate partitions --detach`, which
-- gives up after 2 s of waiting for the locks).
CREATE FUNCTION detach_month(month date, now_at timestamptz DEFAULT now()) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    m timestamp := date_trunc('month', month);
    lo timestamptz := m AT TIME ZONE 'UTC';
    hi timestamptz := (m + interval '1 month') AT TIME ZONE 'UTC';
    t record;
    c record;
    part text;
    n bigint;
    counts jsonb := '{}';
    open_what text;
BEGIN
    IF m >= date_trunc('month', now_at AT TIME ZONE 'UTC') - interval '1 month' THEN
        RAISE EXCEPTION 'month % is not over by a month yet', to_char(m, 'YYYY-MM')
            USING ERRCODE = '55000';
    END IF;
    FOR t IN SELECT * FROM partitioned_tables ORDER BY rank, name LOOP
        part := format('%s_p%s', t.name, to_char(m, 'YYYY_MM'));
        IF to_regclass(part) IS NULL
           OR NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = part::regclass) THEN
            RAISE EXCEPTION '% has no attached partition for %', t.name, to_char(m, 'YYYY-MM')
                USING ERRCODE = '55000';
        END IF;
        EXECUTE format('SELECT count(*) FROM %I', part) INTO n;
        counts := counts || jsonb_build_object(t.name, n);
    END LOOP;
    LOCK TABLE payouts, transfers, collections, journal_entries, postings,
               notification_attempts, outbox_events IN ACCESS EXCLUSIVE MODE;
    SELECT concat_ws(', ',
        (SELECT count(*) || ' open payouts' FROM payouts
         WHERE id >= id_floor('po', lo) AND id < id_floor('po', hi)
           AND status IN ('review_pending', 'accepted', 'processing') HAVING count(*) > 0),
        (SELECT count(*) || ' pending collections' FROM collections
         WHERE id >= id_floor('col', lo) AND id < id_floor('col', hi)
           AND status = 'pending' HAVING count(*) > 0),
        (SELECT count(*) || ' events waiting for delivery' FROM outbox_events
         WHERE id >= id_floor('evt', lo) AND id < id_floor('evt', hi)
           AND delivery_status = 'pending' HAVING count(*) > 0),
        (SELECT count(*) || ' events queued for delivery' FROM notification_queue
         WHERE event_id >= id_floor('evt', lo) AND event_id < id_floor('evt', hi)
         HAVING count(*) > 0),
        (SELECT count(*) || ' open reconciliation exceptions' FROM recon_exceptions
         WHERE status = 'open'
           AND ((payout_id >= id_floor('po', lo) AND payout_id < id_floor('po', hi))
             OR (payout_id >= id_floor('col', lo) AND payout_id < id_floor('col', hi)))
         HAVING count(*) > 0),
        (SELECT count(*) || ' reconciliation adjustments' FROM recon_exceptions
         WHERE adjustment_entry_id >= id_floor('je', lo)
           AND adjustment_entry_id < id_floor('je', hi) HAVING count(*) > 0))
    INTO open_what;
    IF open_what <> '' THEN
        RAISE EXCEPTION 'month % holds open money: %', to_char(m, 'YYYY-MM'), open_what
            USING ERRCODE = '55000';
    END IF;
    INSERT INTO archived_totals AS a (account, amount_fen)
        SELECT account, sum(amount_fen) FROM postings
        WHERE entry_id >= id_floor('je', lo) AND entry_id < id_floor('je', hi)
        GROUP BY account
        ON CONFLICT (account) DO UPDATE SET amount_fen = a.amount_fen + excluded.amount_fen;
    INSERT INTO archived_collection_advances AS a (merchant_id, payer_account_no, owed_fen)
        SELECT merchant_id, payer_account_no, sum(advanced_fen - repaid_fen) FROM collections
        WHERE id >= id_floor('col', lo) AND id < id_floor('col', hi)
        GROUP BY merchant_id, payer_account_no
        ON CONFLICT (merchant_id, payer_account_no)
        DO UPDATE SET owed_fen = a.owed_fen + excluded.owed_fen;
    FOR t IN SELECT * FROM partitioned_tables ORDER BY rank, name LOOP
        part := format('%s_p%s', t.name, to_char(m, 'YYYY_MM'));
        EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', t.name, part);
        -- (A key to a partitioned table has a row for each of its partitions under it.)
        FOR c IN SELECT conname FROM pg_constraint
                 WHERE conrelid = part::regclass AND contype = 'f' AND conparentid = 0 LOOP
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, c.conname);
        END LOOP;
    END LOOP;
    INSERT INTO archived_months (month, row_counts) VALUES (m::date, counts);
    RETURN counts;
END $$;

-- A posting's account and journal entry are checked once per statement, not once per row
-- (issue 25). A foreign key checks each new row on its own: a query by SPI that also locks the
-- row it finds (FOR KEY SHARE), which writes that row's page and a WAL record, and on the
-- accounts every payout shares (fee income, a bank's reserve) makes a MultiXact whenever two
-- transactions hold it at once. The postings' two keys were up to ~40 % of the time of the
-- statements that write postings (auto_explain, PostgreSQL 15). Writing batches of 40 entries
-- and 80 postings from four connections (PostgreSQL 18, four interleaved runs, medians): 26.6
-- µs of backend CPU per posting with the keys, 16.6 with this check, 13.0 with no check at all
-- (README, "A posting's references, checked per statement").
--
-- What the keys guaranteed still holds:
-- * a posting names an account and an entry that exist: `postings_refer` below, after every
--   statement that inserts postings, over the rows it inserted (a 23503 foreign_key_violation
--   otherwise, as the keys raised, and the statement's changes are undone);
-- * what a posting names stays: accounts and journal entries are never deleted, nor an
--   account's code changed (`ledger_kept` refuses it; the ledger has always only grown, and a
--   month leaves only by detach_month, which takes a month's postings and entries together).
-- The keys' locks are not needed for this: with no delete, a row one transaction found cannot
-- go away before it commits.

ALTER TABLE postings DROP CONSTRAINT postings_account_fkey;

-- The month-to-month keys (migration 0021) on every partition there is, and none on the months
-- ensure_partitions makes from now on.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT con.conname, rel.relname FROM pg_constraint con
             JOIN pg_class rel ON rel.oid = con.conrelid
             JOIN pg_inherits i ON i.inhrelid = rel.oid
             WHERE i.inhparent = 'postings'::regclass AND con.contype = 'f' LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', c.relname, c.conname);
    END LOOP;
END $$;
UPDATE partitioned_tables SET refers_to = NULL WHERE name = 'postings';

-- The accounts and the entries the statement's postings name, each once (a batch's postings
-- name a few accounts many times, each entry twice), are looked up by index, one at a time,
-- whatever the statement's size and whatever the planner thinks of the tables: `OFFSET 0`
-- keeps each NOT EXISTS a subplan run per value. Without it PostgreSQL may make it a hash anti
-- join or a hashed subplan, a read of the whole table per statement (EXPLAIN shows both on a
-- fresh database; in a run without OFFSET 0 the check took 6.8 ms a statement after 16,000
-- payouts, which only a read of the growing journal explains). test_posting_refs.py holds it.
CREATE FUNCTION postings_refer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    SELECT n.account INTO missing FROM (SELECT DISTINCT account FROM new_postings) n
    WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.code = n.account OFFSET 0)
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING TABLE = 'postings',
            MESSAGE = format('a posting names account %s, which does not exist', missing);
    END IF;
    SELECT n.entry_id INTO missing FROM (SELECT DISTINCT entry_id FROM new_postings) n
    WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.id = n.entry_id OFFSET 0)
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING TABLE = 'postings',
            MESSAGE = format('a posting names journal entry %s, which does not exist', missing);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER postings_refer AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_refer();

CREATE FUNCTION ledger_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %: the ledger only grows (a month leaves by detach_month)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;

-- Row triggers on the partitioned table reach every partition, those made later too.
CREATE TRIGGER ledger_kept BEFORE DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_kept();
CREATE TRIGGER ledger_kept BEFORE DELETE OR UPDATE OF code ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_kept();
CREATE TRIGGER ledger_kept_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_kept();
CREATE TRIGGER ledger_kept_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_kept();

-- Smaller statistics samples for the tables every payout appends to (issue 25). Autovacuum
-- analyzes a table each time a tenth of it is new, and an analyze samples 300 rows per unit of
-- the largest statistics target among its columns (100 by default: 30,000 rows) and sorts the
-- sample once per column; a jsonb column sorts by comparing whole documents. These tables grow
-- by a tenth every few seconds under load until they hold tens of thousands of payouts, so at
-- 900 payouts/s from an empty database autovacuum's analyzes took ~9 s of every 40 (the
-- outbox's month ~0.48 s each, with its event snapshots), about a quarter of PostgreSQL's CPU
-- (perf; README, "Autovacuum's analyzes").
--
-- Every query on them reads by id, by merchant and id, by status or by date: a target of 10
-- (3,000 sampled rows, a 10-value most-common list and a 10-bucket histogram) still tells the
-- planner what it uses (row counts, ids unique, a handful of merchants or statuses). The jsonb
-- documents get none: nothing filters on them.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT a.attrelid::regclass AS tab, a.attname, a.atttypid
             FROM pg_attribute a
             WHERE a.attrelid IN ('payouts'::regclass, 'outbox_events'::regclass,
                                  'journal_entries'::regclass, 'postings'::regclass,
                                  'notification_attempts'::regclass, 'transfers'::regclass,
                                  'collections'::regclass, 'order_keys'::regclass,
                                  'payee_velocity'::regclass)
               AND a.attnum > 0 AND NOT a.attisdropped LOOP
        -- On a partitioned table this reaches its partitions; ensure_partitions below gives
        -- the months it makes later the same.
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', c.tab, c.attname,
                       CASE WHEN c.atttypid = 'jsonb'::regtype THEN 0 ELSE 10 END);
    END LOOP;
END $$;

-- As in 0021, and a new month takes its table's statistics targets (CREATE TABLE ... LIKE does
-- not copy them).
CREATE OR REPLACE FUNCTION ensure_partitions(months_ahead integer, from_month timestamptz DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    t record;
    c record;
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
                -- A target left at the default is NULL from PostgreSQL 17 on, -1 before.
                FOR c IN SELECT attname, attstattarget FROM pg_attribute
                         WHERE attrelid = t.name::regclass AND attnum > 0 AND NOT attisdropped
                           AND attstattarget >= 0 LOOP
                    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET STATISTICS %s',
                        part, c.attname, c.attstattarget);
                END LOOP;
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

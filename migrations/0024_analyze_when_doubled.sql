-- The tables every payout appends to are analyzed when they have doubled, not each time a
-- tenth of them is new (issue 25; 0023 made each analyze sample fewer rows). Every analyze
-- also changes the table's statistics, and so makes every connection plan again the cached
-- statements that read it: the payout path's generic plans (PAYGATE_GENERIC_PLANS) included.
-- What the planner needs of these tables does not drift as they grow: ids are time-ordered and
-- unique, a handful of merchants and statuses; and it scales the row count of the last
-- analyze by the table's current size in pages at every plan, so the counts stay current.
-- At 900 payouts/s on a fresh system (hop_cost, 3 and 4 rounds): PostgreSQL's CPU per payout
-- 0.95-0.96 of what it was (README, "Autovacuum's analyzes"). Autovacuum's other work, vacuuming
-- (the visibility map, freezing, pruning the outbox's updated events), is as before.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT r.oid::regclass AS tab FROM pg_class r
             WHERE r.relkind = 'r' AND (
                 r.oid IN ('order_keys'::regclass, 'payee_velocity'::regclass)
                 OR r.oid IN (SELECT i.inhrelid FROM pg_inherits i
                              JOIN partitioned_tables p ON i.inhparent = p.name::regclass)) LOOP
        EXECUTE format('ALTER TABLE %s SET (autovacuum_analyze_scale_factor = 1)', c.tab);
    END LOOP;
END $$;

-- The months ensure_partitions makes from now on (its WITH (...) for each partition).
UPDATE partitioned_tables
SET storage = concat_ws(', ', nullif(storage, ''), 'autovacuum_analyze_scale_factor=1');

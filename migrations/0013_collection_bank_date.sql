-- Reconciliation of collections (代收, SPEC 10 and 16): the bank's business date for each
-- collection, from the first bank word that tells it (as payouts.bank_date, migration 0010).
-- A bank's statement lists its debits beside its payouts; the collection's line is found by
-- its id (merchant_ref) and a collection the bank told of without a line is 短款.
ALTER TABLE collections ADD COLUMN bank_date date;

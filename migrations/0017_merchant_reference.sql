-- POST /admin/merchants may carry a `reference` (the operator's key for this creation): a
-- retry with the same reference and fields answers the merchant it made, not a second one.
ALTER TABLE merchants
    ADD COLUMN create_reference text,
    ADD COLUMN create_hash text,
    ADD CONSTRAINT merchants_create_reference_key UNIQUE (create_reference),
    ADD CONSTRAINT merchants_create_hash_with_reference
        CHECK ((create_reference IS NULL) = (create_hash IS NULL));

-- The operator console (SPEC 17): named operators with a role and an argon2 password hash,
-- the append-only audit of every operator action, and the approvals of four-eyes reviews.
-- Console sessions live in Redis (they expire by themselves after 30 idle minutes).

CREATE TABLE operators (
    id            text PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'approver', 'admin')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Who did what to which object, before and after, why; written in the transaction of the
-- change it records. `operator_id` is NULL for the `/admin` API's bearer token.
CREATE TABLE operator_actions (
    id            bigserial PRIMARY KEY,
    operator_id   text REFERENCES operators (id),
    operator_name text NOT NULL,
    via           text NOT NULL CHECK (via IN ('console', 'api')),
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    sim_at        timestamptz,
    action        text NOT NULL,
    object_type   text NOT NULL,
    object_id     text NOT NULL,
    before        jsonb,
    after         jsonb,
    reason        text
);
CREATE INDEX operator_actions_object ON operator_actions (object_type, object_id, id);

CREATE FUNCTION operator_actions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'operator_actions is append-only';
END $$;
CREATE TRIGGER operator_actions_append_only BEFORE UPDATE OR DELETE ON operator_actions
    FOR EACH ROW EXECUTE FUNCTION operator_actions_append_only();

-- Four eyes: a large payout under review is approved once two different approvers said so.
CREATE TABLE payout_approvals (
    payout_id     text NOT NULL,
    approver      text NOT NULL,  -- the operator's name ('admin-token' for the API's token)
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payout_id, approver)
);

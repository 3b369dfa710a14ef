-- Retry-safe mutations (api/src/kit/idempotency.rs): per user, the client's id, the
-- mutation it named, a hash of its input and the outcome (the ids its payload shows),
-- written in the same transaction as the change. Old keys are removed by the scheduler.
CREATE TABLE client_mutations (
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  text NOT NULL,
    operation  text NOT NULL,
    input_hash bytea NOT NULL,
    outcome    jsonb,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX client_mutations_created_at_idx ON client_mutations (created_at);

-- One person, one account per company: an account may hold staff grants and owner links
-- at once (a technician who owns a flat signs in once). Staff = holds a role other than
-- the owner role; owner = linked to an owner record. `kind` no longer says which; it is
-- kept for one release (servers of the previous release read it) and dropped in the next.
ALTER TABLE users ALTER COLUMN kind DROP NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_phone_key;
ALTER TABLE users ADD CONSTRAINT users_company_phone_key UNIQUE (company_id, phone);
-- sign-in by phone looks across companies (the unique index leads with company_id)
CREATE INDEX users_phone_idx ON users (phone);

-- Sessions end by an instant on the account, so a lower layer (disabling an account)
-- need not touch the sign-in layer's rows: access tokens issued before
-- tokens_valid_after are void (sign-out, password change or reset, disabling); refresh
-- tokens created before sessions_valid_after are void (password change or reset, disabling).
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz, ADD COLUMN sessions_valid_after timestamptz;

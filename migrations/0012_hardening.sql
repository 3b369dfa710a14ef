-- Every company gets a short code unique on the server: it is the first level of device
-- topics and broker usernames ({root}/{company}/{device}/…), so two companies with the same
-- device codes never share a topic.
ALTER TABLE companies ADD COLUMN code text;
UPDATE companies SET code = 'C' || upper(substr(md5(id::text), 1, 7)) WHERE code IS NULL;
ALTER TABLE companies ALTER COLUMN code SET NOT NULL;
ALTER TABLE companies ADD CONSTRAINT companies_code_key UNIQUE (code);
ALTER TABLE companies ADD CONSTRAINT companies_code_check CHECK (code ~ '^[A-Z][A-Z0-9]{1,11}$');

-- A device's own broker account (Mosquitto dynamic security): the username is
-- {company}/{device}, the password is shown once when provisioned and kept only by the broker (hashed).
ALTER TABLE devices ADD COLUMN broker_username text;
ALTER TABLE devices ADD COLUMN broker_provisioned_at timestamptz;
ALTER TABLE devices ADD CONSTRAINT devices_broker_username_key UNIQUE (broker_username);

-- Patrol scans record how precise the phone said its position was.
ALTER TABLE patrol_scans ADD COLUMN accuracy_m double precision;

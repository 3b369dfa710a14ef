-- 表计所属房屋: the house a meter measures, a real column (kept from the meter's
-- `attributes.houseId`, which the ledger validates) with a foreign key and an index, for
-- meter reading and billing to join on.
ALTER TABLE devices ADD COLUMN house_id uuid
    GENERATED ALWAYS AS ((attributes ->> 'houseId')::uuid) STORED REFERENCES houses(id);
CREATE INDEX devices_house_id_idx ON devices (house_id) WHERE house_id IS NOT NULL;

-- 费用 charges a chargeable repair puts on a house: the billing module turns the pending ones
-- into bill lines (status billed); one paid in cash on the spot carries its receipt number.
CREATE TABLE charges (
    id              uuid PRIMARY KEY,
    company_id      uuid NOT NULL REFERENCES companies(id),
    project_id      uuid NOT NULL REFERENCES projects(id),
    house_id        uuid REFERENCES houses(id),
    owner_id        uuid REFERENCES owners(id),
    source          text NOT NULL CHECK (source IN ('work_order')),
    source_id       uuid NOT NULL,
    description     text NOT NULL,
    amount          numeric(12, 2) NOT NULL CHECK (amount > 0),
    status          text NOT NULL CHECK (status IN ('pending', 'paid', 'billed')),
    cash_receipt_no text,
    created_by      uuid REFERENCES users(id),
    created_at      timestamptz NOT NULL,
    CONSTRAINT charges_source_key UNIQUE (source, source_id)
);
CREATE INDEX charges_pending_idx ON charges (project_id, created_at) WHERE status = 'pending';
CREATE INDEX charges_company_id_idx ON charges (company_id);
CREATE INDEX charges_house_id_idx ON charges (house_id);
CREATE INDEX charges_owner_id_idx ON charges (owner_id);
CREATE INDEX charges_created_by_idx ON charges (created_by);

-- 账单调整 and 空置房优惠, both through the approval kit: an approved adjustment is a line
-- of its bill; an approved vacancy relief takes a share of the property fee of a house's
-- bills for its months (a discount line each run computes)
CREATE TABLE vacancy_reliefs (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    house_id    uuid NOT NULL REFERENCES houses(id),
    from_period date NOT NULL CHECK (extract(day FROM from_period) = 1),
    to_period   date NOT NULL CHECK (extract(day FROM to_period) = 1),
    ratio       numeric(5, 4) NOT NULL CHECK (ratio > 0 AND ratio <= 1),
    approval_id uuid NOT NULL REFERENCES approvals(id),
    created_at  timestamptz NOT NULL,
    CHECK (from_period <= to_period),
    CONSTRAINT vacancy_reliefs_approval_key UNIQUE (approval_id)
);
CREATE INDEX vacancy_reliefs_house_idx ON vacancy_reliefs (house_id, from_period);
CREATE INDEX vacancy_reliefs_company_id_idx ON vacancy_reliefs (company_id);
CREATE INDEX vacancy_reliefs_project_idx ON vacancy_reliefs (project_id, from_period, to_period);

ALTER TABLE approvals DROP CONSTRAINT approvals_kind_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_kind_check
    CHECK (kind IN ('late_fee_waiver', 'refund', 'bill_adjustment', 'vacancy_relief'));

-- a fee item's line and its discount line on one bill
DROP INDEX bill_lines_item_key;
CREATE UNIQUE INDEX bill_lines_item_key ON bill_lines (bill_id, fee_item_id, kind) WHERE fee_item_id IS NOT NULL;
-- a discount names the fee item it discounts
ALTER TABLE bill_lines DROP CONSTRAINT bill_lines_check;
ALTER TABLE bill_lines ADD CONSTRAINT bill_lines_check
    CHECK ((kind IN ('fee', 'discount')) = (fee_item_id IS NOT NULL));

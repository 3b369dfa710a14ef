-- 滞纳金 a project's late-fee policy, and how far each bill's late fee has accrued.
CREATE TABLE late_fee_policies (
    project_id  uuid PRIMARY KEY REFERENCES projects(id),
    company_id  uuid NOT NULL REFERENCES companies(id),
    -- per day of the unpaid principal, e.g. 0.0005 (0.05 %)
    daily_rate  numeric(8, 6) NOT NULL CHECK (daily_rate >= 0 AND daily_rate <= 0.01),
    grace_days  integer NOT NULL CHECK (grace_days BETWEEN 0 AND 365),
    -- the late fee never exceeds this share of the bill's total (1: the principal)
    cap_ratio   numeric(6, 4) NOT NULL CHECK (cap_ratio >= 0 AND cap_ratio <= 1),
    updated_by  uuid REFERENCES users(id),
    updated_at  timestamptz NOT NULL
);
CREATE INDEX late_fee_policies_company_id_idx ON late_fee_policies (company_id);
CREATE INDEX late_fee_policies_updated_by_idx ON late_fee_policies (updated_by);

-- accrued up to and including this day; a waived late fee stops accruing
ALTER TABLE bills ADD COLUMN late_fee_through date;
ALTER TABLE bills ADD COLUMN late_fee_waived boolean NOT NULL DEFAULT false;
CREATE INDEX bills_overdue_idx ON bills (project_id, due_date) WHERE status <> 'paid';

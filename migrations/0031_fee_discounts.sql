-- 优惠 a fee item's discounts: a percentage off, or "pay N months, M free" on bills that
-- carry at least N + M months of the item (quarterly, yearly cycles); for all houses of
-- the item or listed ones; from a month on, until ended
CREATE TABLE fee_discounts (
    id             uuid PRIMARY KEY,
    company_id     uuid NOT NULL REFERENCES companies(id),
    project_id     uuid NOT NULL REFERENCES projects(id),
    fee_item_id    uuid NOT NULL REFERENCES fee_items(id),
    name           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('percentage', 'free_months')),
    rate           numeric(5, 4) CHECK (rate > 0 AND rate <= 1),
    pay_months     integer CHECK (pay_months BETWEEN 1 AND 36),
    free_months    integer CHECK (free_months BETWEEN 1 AND 12),
    house_ids      uuid[] NOT NULL DEFAULT '{}',
    effective_from date NOT NULL,
    effective_to   date,
    created_by     uuid NOT NULL REFERENCES users(id),
    created_at     timestamptz NOT NULL,
    CHECK ((kind = 'percentage') = (rate IS NOT NULL)),
    CHECK ((kind = 'free_months') = (pay_months IS NOT NULL AND free_months IS NOT NULL)),
    CHECK (effective_to IS NULL OR effective_to >= effective_from)
);
CREATE INDEX fee_discounts_project_idx ON fee_discounts (project_id, effective_from);
CREATE INDEX fee_discounts_company_id_idx ON fee_discounts (company_id);
CREATE INDEX fee_discounts_fee_item_id_idx ON fee_discounts (fee_item_id);
CREATE INDEX fee_discounts_created_by_idx ON fee_discounts (created_by);

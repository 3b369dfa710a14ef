-- 费用项目设置: what a project charges for, who pays, how the amount is computed, how
-- often, and the price history (a price takes effect from its date; bills keep the price
-- they were issued with).
CREATE TABLE fee_items (
    id              uuid PRIMARY KEY,
    company_id      uuid NOT NULL REFERENCES companies(id),
    project_id      uuid NOT NULL REFERENCES projects(id),
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('property', 'water', 'electricity', 'gas', 'parking', 'garbage',
                                                  'shared', 'other')),
    -- a house or a parking space is billed; for a house, which resident pays
    payer           text NOT NULL CHECK (payer IN ('house', 'parking_space')),
    paying_resident text NOT NULL DEFAULT 'owner' CHECK (paying_resident IN ('owner', 'tenant')),
    method          text NOT NULL CHECK (method IN ('building_area', 'indoor_area', 'fixed', 'metered', 'tiered',
                                                    'formula')),
    cycle           text NOT NULL CHECK (cycle IN ('monthly', 'quarterly', 'yearly', 'one_off')),
    prepaid         boolean NOT NULL DEFAULT false,
    -- which houses (or spaces) it applies to
    scope           text NOT NULL DEFAULT 'all' CHECK (scope IN ('all', 'buildings', 'usage', 'houses')),
    building_ids    uuid[] NOT NULL DEFAULT '{}',
    house_usage     text CHECK (house_usage IN ('residence', 'shop', 'office', 'garage', 'other')),
    house_ids       uuid[] NOT NULL DEFAULT '{}',
    -- the meters a metered or tiered item reads
    meter_category  text CHECK (meter_category IN ('water_meter', 'electricity_meter', 'gas_meter')),
    effective_from  date NOT NULL,
    effective_to    date,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (project_id, name),
    CHECK (effective_to IS NULL OR effective_to >= effective_from),
    CHECK ((method IN ('metered', 'tiered')) = (meter_category IS NOT NULL)),
    CHECK ((scope = 'usage') = (house_usage IS NOT NULL))
);
CREATE INDEX fee_items_company_id_idx ON fee_items (company_id);
CREATE INDEX fee_items_project_idx ON fee_items (project_id, id);

-- 收费标准 a fee item's prices, each from its date
CREATE TABLE fee_item_prices (
    fee_item_id    uuid NOT NULL REFERENCES fee_items(id),
    effective_from date NOT NULL,
    unit_price     numeric(12, 4) NOT NULL CHECK (unit_price >= 0),
    -- tiered: [{"upTo": "10", "price": "3.2"}, …, {"upTo": null, "price": "5.1"}]
    tiers          jsonb NOT NULL DEFAULT '[]',
    formula        text,
    created_by     uuid REFERENCES users(id),
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (fee_item_id, effective_from)
);
CREATE INDEX fee_item_prices_created_by_idx ON fee_item_prices (created_by);

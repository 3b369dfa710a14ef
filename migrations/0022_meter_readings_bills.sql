-- 抄表 and 账单: a meter's register per billing month, meter replacements, bill runs, bills
-- and their lines, and the payments recorded against them.

-- 计费开始日期: the day a house starts to be charged (handover or move-in); a month it
-- starts in is billed by its days.
ALTER TABLE houses ADD COLUMN charge_start date;

-- A meter's register at the close of a billing month (the month's first day names it).
-- `previous` is the register the usage counts from (the last period's reading, or the new
-- meter's initial reading after a replacement); `usage` is what the period consumed.
CREATE TABLE meter_readings (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    device_id   uuid NOT NULL REFERENCES devices(id),
    house_id    uuid REFERENCES houses(id),
    period      date NOT NULL CHECK (extract(day FROM period) = 1),
    reading     numeric(16, 4) NOT NULL CHECK (reading >= 0),
    previous    numeric(16, 4),
    usage       numeric(16, 4) CHECK (usage >= 0),
    read_at     timestamptz NOT NULL,
    source      text NOT NULL CHECK (source IN ('iot', 'staff', 'import')),
    -- flagged: abnormal, held out of billing until reviewed (accepted or corrected)
    status      text NOT NULL CHECK (status IN ('normal', 'flagged', 'accepted')),
    flag_reason text,
    recorded_by uuid REFERENCES users(id),
    reviewed_by uuid REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT meter_readings_device_period_key UNIQUE (device_id, period)
);
CREATE INDEX meter_readings_project_period_idx ON meter_readings (project_id, period, status);
CREATE INDEX meter_readings_company_id_idx ON meter_readings (company_id);
CREATE INDEX meter_readings_house_id_idx ON meter_readings (house_id);
CREATE INDEX meter_readings_recorded_by_idx ON meter_readings (recorded_by);
CREATE INDEX meter_readings_reviewed_by_idx ON meter_readings (reviewed_by);

-- 换表 a meter replaced: the old register's final reading and the new one's first.
CREATE TABLE meter_replacements (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    device_id   uuid NOT NULL REFERENCES devices(id),
    replaced_at timestamptz NOT NULL,
    old_final   numeric(16, 4) NOT NULL CHECK (old_final >= 0),
    new_initial numeric(16, 4) NOT NULL CHECK (new_initial >= 0),
    recorded_by uuid REFERENCES users(id),
    created_at  timestamptz NOT NULL
);
CREATE INDEX meter_replacements_device_idx ON meter_replacements (device_id, replaced_at);
CREATE INDEX meter_replacements_company_id_idx ON meter_replacements (company_id);
CREATE INDEX meter_replacements_project_id_idx ON meter_replacements (project_id);
CREATE INDEX meter_replacements_recorded_by_idx ON meter_replacements (recorded_by);

-- 账单生成 one committed run: what it covered and what it did.
CREATE TABLE bill_runs (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    period      date NOT NULL CHECK (extract(day FROM period) = 1),
    due_date    date NOT NULL,
    scope       jsonb NOT NULL,
    created     integer NOT NULL,
    regenerated integer NOT NULL,
    unchanged   integer NOT NULL,
    skipped     integer NOT NULL,
    total       numeric(14, 2) NOT NULL,
    created_by  uuid REFERENCES users(id),
    created_at  timestamptz NOT NULL
);
CREATE INDEX bill_runs_project_idx ON bill_runs (project_id, created_at);
CREATE INDEX bill_runs_company_id_idx ON bill_runs (company_id);
CREATE INDEX bill_runs_created_by_idx ON bill_runs (created_by);

-- 账单 what one payer owes for a house or a parking space for one month. `total` is the
-- sum of its lines; the late fee accrues beside it (the issued lines never change).
CREATE TABLE bills (
    id               uuid PRIMARY KEY,
    company_id       uuid NOT NULL REFERENCES companies(id),
    project_id       uuid NOT NULL REFERENCES projects(id),
    building_id      uuid REFERENCES buildings(id),
    house_id         uuid REFERENCES houses(id),
    parking_space_id uuid REFERENCES parking_spaces(id),
    period           date NOT NULL CHECK (extract(day FROM period) = 1),
    paying_resident  text NOT NULL CHECK (paying_resident IN ('owner', 'tenant')),
    payer_id         uuid NOT NULL REFERENCES owners(id),
    run_id           uuid REFERENCES bill_runs(id),
    total            numeric(14, 2) NOT NULL CHECK (total >= 0),
    late_fee         numeric(14, 2) NOT NULL DEFAULT 0 CHECK (late_fee >= 0),
    paid             numeric(14, 2) NOT NULL DEFAULT 0 CHECK (paid >= 0),
    status           text NOT NULL CHECK (status IN ('unpaid', 'partial', 'paid')),
    due_date         date NOT NULL,
    issued_at        timestamptz NOT NULL,
    paid_at          timestamptz,
    updated_at       timestamptz NOT NULL,
    CHECK ((house_id IS NULL) <> (parking_space_id IS NULL)),
    CHECK (paid <= total + late_fee)
);
CREATE UNIQUE INDEX bills_house_period_key ON bills (house_id, period, paying_resident) WHERE house_id IS NOT NULL;
CREATE UNIQUE INDEX bills_space_period_key ON bills (parking_space_id, period) WHERE parking_space_id IS NOT NULL;
CREATE INDEX bills_payer_idx ON bills (payer_id, status, period DESC, id);
CREATE INDEX bills_project_period_idx ON bills (project_id, period, status);
CREATE INDEX bills_company_id_idx ON bills (company_id);
CREATE INDEX bills_building_id_idx ON bills (building_id);
CREATE INDEX bills_parking_space_id_idx ON bills (parking_space_id);
CREATE INDEX bills_run_id_idx ON bills (run_id);

-- 账单明细 one line: a fee item of the period (unique per bill and item), a work-order
-- charge, a discount or an adjustment.
CREATE TABLE bill_lines (
    id               uuid PRIMARY KEY,
    bill_id          uuid NOT NULL REFERENCES bills(id) ON DELETE CASCADE,
    company_id       uuid NOT NULL REFERENCES companies(id),
    kind             text NOT NULL CHECK (kind IN ('fee', 'charge', 'discount', 'adjustment')),
    fee_item_id      uuid REFERENCES fee_items(id),
    charge_id        uuid REFERENCES charges(id),
    name             text NOT NULL,
    quantity         numeric(16, 4) NOT NULL,
    unit_price       numeric(14, 4) NOT NULL,
    months           numeric(8, 4),
    previous_reading numeric(16, 4),
    current_reading  numeric(16, 4),
    amount           numeric(14, 2) NOT NULL,
    position         integer NOT NULL,
    CHECK ((kind = 'fee') = (fee_item_id IS NOT NULL)),
    CHECK ((kind = 'charge') = (charge_id IS NOT NULL))
);
CREATE UNIQUE INDEX bill_lines_item_key ON bill_lines (bill_id, fee_item_id) WHERE fee_item_id IS NOT NULL;
CREATE UNIQUE INDEX bill_lines_charge_key ON bill_lines (charge_id) WHERE charge_id IS NOT NULL;
CREATE INDEX bill_lines_company_id_idx ON bill_lines (company_id);
CREATE INDEX bill_lines_fee_item_id_idx ON bill_lines (fee_item_id);

ALTER TABLE charges ADD COLUMN bill_id uuid REFERENCES bills(id);
CREATE INDEX charges_bill_id_idx ON charges (bill_id);

-- 收款 money received: offline by finance (cash, transfer, POS) now, online later; each
-- numbered with a receipt of its company and year.
CREATE TABLE payments (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    payer_id    uuid NOT NULL REFERENCES owners(id),
    method      text NOT NULL CHECK (method IN ('cash', 'bank_transfer', 'pos', 'wechat', 'alipay')),
    reference   text,
    amount      numeric(14, 2) NOT NULL CHECK (amount > 0),
    receipt_no  text NOT NULL,
    note        text,
    received_by uuid REFERENCES users(id),
    received_at timestamptz NOT NULL,
    CONSTRAINT payments_receipt_key UNIQUE (company_id, receipt_no)
);
CREATE INDEX payments_company_id_idx ON payments (company_id, received_at);
CREATE INDEX payments_project_id_idx ON payments (project_id);
CREATE INDEX payments_payer_id_idx ON payments (payer_id);
CREATE INDEX payments_received_by_idx ON payments (received_by);

-- what a payment paid of which bill
CREATE TABLE payment_allocations (
    payment_id uuid NOT NULL REFERENCES payments(id),
    bill_id    uuid NOT NULL REFERENCES bills(id),
    company_id uuid NOT NULL REFERENCES companies(id),
    amount     numeric(14, 2) NOT NULL CHECK (amount > 0),
    PRIMARY KEY (payment_id, bill_id)
);
CREATE INDEX payment_allocations_bill_id_idx ON payment_allocations (bill_id);
CREATE INDEX payment_allocations_company_id_idx ON payment_allocations (company_id);

-- 收据编号 the next receipt number of a company and year
CREATE TABLE receipt_counters (
    company_id uuid NOT NULL REFERENCES companies(id),
    year       integer NOT NULL,
    last_no    integer NOT NULL,
    PRIMARY KEY (company_id, year)
);

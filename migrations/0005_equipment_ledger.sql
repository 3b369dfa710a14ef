-- 设备台账: the equipment ledger. Category-specific attributes are validated by the
-- service and kept in `attributes`; columns hold what every device has.

CREATE TABLE devices (
    id                  uuid PRIMARY KEY,
    company_id          uuid NOT NULL REFERENCES companies(id),
    project_id          uuid NOT NULL REFERENCES projects(id),
    code                text NOT NULL,
    name                text NOT NULL,
    category            text NOT NULL CHECK (category IN ('elevator', 'access_door', 'water_meter', 'electricity_meter',
                                                         'gas_meter', 'fire_equipment', 'water_pump', 'camera', 'other')),
    model               text NOT NULL DEFAULT '',
    specification       text NOT NULL DEFAULT '',
    manufacturer        text NOT NULL DEFAULT '',
    purchase_date       date,
    install_date        date,
    building_id         uuid REFERENCES buildings(id),
    unit_id             uuid REFERENCES units(id),
    location            text NOT NULL DEFAULT '',
    warranty_expiry     date,
    status              text NOT NULL CHECK (status IN ('in_use', 'standby', 'under_repair', 'scrapped')),
    responsible_user_id uuid REFERENCES users(id),
    attributes          jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT devices_company_code_key UNIQUE (company_id, code)
);
CREATE INDEX devices_project_idx ON devices (project_id, category, status, id);
CREATE INDEX devices_building_id_idx ON devices (building_id);
CREATE INDEX devices_unit_id_idx ON devices (unit_id);
CREATE INDEX devices_responsible_user_id_idx ON devices (responsible_user_id);

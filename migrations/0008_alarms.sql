-- Telemetry history, one row per device message (the values as JSON): a 20,000 msg/s
-- ingest writes one row and two index entries per message instead of one per metric.
-- No foreign key: devices are scrapped, never deleted, and the check would cost an index
-- probe per row on the hottest insert path.
DROP TABLE telemetry;
CREATE TABLE telemetry (
    device_id uuid NOT NULL,
    ts        timestamptz NOT NULL,
    data      jsonb NOT NULL
);
CREATE INDEX telemetry_device_ts_idx ON telemetry (device_id, ts);
CREATE INDEX telemetry_ts_brin ON telemetry USING brin (ts);

-- 告警规则: what raises an alarm. A rule applies to the company's devices, narrowed by
-- project, category and device.
CREATE TABLE alarm_rules (
    id                  uuid PRIMARY KEY,
    company_id          uuid NOT NULL REFERENCES companies(id),
    project_id          uuid REFERENCES projects(id),
    category            text,
    device_id           uuid REFERENCES devices(id),
    name                text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('threshold', 'fault', 'offline', 'jump', 'reverse_flow', 'night_flow')),
    metric              text NOT NULL DEFAULT '',
    op                  text NOT NULL DEFAULT '' CHECK (op IN ('', 'above', 'below')),
    threshold           double precision,
    codes               text[] NOT NULL DEFAULT '{}',
    duration_secs       integer NOT NULL DEFAULT 0 CHECK (duration_secs >= 0),
    factor              double precision,
    severity            text NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    escalate_after_secs integer NOT NULL DEFAULT 900 CHECK (escalate_after_secs >= 0),
    enabled             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alarm_rules_company_idx ON alarm_rules (company_id);
CREATE INDEX alarm_rules_project_id_idx ON alarm_rules (project_id);
CREATE INDEX alarm_rules_device_id_idx ON alarm_rules (device_id);

-- 告警: open → acknowledged → resolved; one unresolved alarm per device and rule.
CREATE TABLE alarms (
    id               uuid PRIMARY KEY,
    company_id       uuid NOT NULL REFERENCES companies(id),
    project_id       uuid NOT NULL REFERENCES projects(id),
    device_id        uuid NOT NULL REFERENCES devices(id),
    rule_id          uuid NOT NULL REFERENCES alarm_rules(id),
    severity         text NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    kind             text NOT NULL,
    title            text NOT NULL,
    detail           text NOT NULL DEFAULT '',
    value            double precision,
    state            text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    raised_at        timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  uuid REFERENCES users(id),
    resolved_at      timestamptz,
    resolved_by      uuid REFERENCES users(id),
    resolution       text NOT NULL DEFAULT '',
    escalated_at     timestamptz,
    reminded_at      timestamptz,
    reminders        integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX alarms_one_unresolved_idx ON alarms (device_id, rule_id) WHERE state <> 'resolved';
CREATE INDEX alarms_project_idx ON alarms (project_id, raised_at DESC);
CREATE INDEX alarms_open_idx ON alarms (raised_at) WHERE state = 'open';
CREATE INDEX alarms_company_id_idx ON alarms (company_id);
CREATE INDEX alarms_rule_id_idx ON alarms (rule_id);
CREATE INDEX alarms_acknowledged_by_idx ON alarms (acknowledged_by);
CREATE INDEX alarms_resolved_by_idx ON alarms (resolved_by);

-- 报修需求: a device needs repair (from an alarm, a failed checklist item, a patrol or a
-- person). The work-order module owns this table and turns requests into work orders.
CREATE TABLE repair_requests (
    id            uuid PRIMARY KEY,
    company_id    uuid NOT NULL REFERENCES companies(id),
    project_id    uuid NOT NULL REFERENCES projects(id),
    device_id     uuid NOT NULL REFERENCES devices(id),
    reason        text NOT NULL,
    source        text NOT NULL CHECK (source IN ('alarm', 'maintenance', 'patrol', 'manual')),
    source_id     uuid,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'closed')),
    created_by    uuid REFERENCES users(id),
    created_at    timestamptz NOT NULL,
    work_order_id uuid
);
CREATE UNIQUE INDEX repair_requests_source_idx ON repair_requests (source, source_id, reason) WHERE source_id IS NOT NULL;
CREATE INDEX repair_requests_device_idx ON repair_requests (device_id, created_at DESC);
CREATE INDEX repair_requests_project_idx ON repair_requests (project_id, status, created_at DESC);
CREATE INDEX repair_requests_company_id_idx ON repair_requests (company_id);
CREATE INDEX repair_requests_created_by_idx ON repair_requests (created_by);

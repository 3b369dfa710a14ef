-- 设备重要程度: a device's importance orders the technician's task list and the dispatch
-- queue when hands are short (critical first, low last).
ALTER TABLE devices ADD COLUMN importance text NOT NULL DEFAULT 'normal'
    CHECK (importance IN ('critical', 'normal', 'low'));

-- critical 2, normal 1, low 0 (a missing device counts as normal)
CREATE FUNCTION importance_rank(importance text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE coalesce(importance, 'normal') WHEN 'critical' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END)::smallint
$$;

-- How urgent a waiting order is: its priority first, then its device's importance
-- (orders without a device count as normal). Higher is more urgent; the Rust side
-- (workorders::model::urgency) computes the same number for cursors.
CREATE FUNCTION work_order_urgency(priority text, importance text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((CASE priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END) * 3
          + importance_rank(importance))::smallint
$$;

-- 按使用量保养: besides the calendar, a plan may fall due on a cumulative counter the
-- device reports in its telemetry (elevator trips or run hours, pump starts, a register).
ALTER TABLE maintenance_plans ADD COLUMN trigger text NOT NULL DEFAULT 'calendar'
    CHECK (trigger IN ('calendar', 'usage'));
-- the telemetry metric counted, every how many units the plan falls due, and how many
-- units ahead the task appears
ALTER TABLE maintenance_plans ADD COLUMN counter_metric text;
ALTER TABLE maintenance_plans ADD COLUMN counter_every double precision CHECK (counter_every > 0);
ALTER TABLE maintenance_plans ADD COLUMN counter_lead double precision NOT NULL DEFAULT 0 CHECK (counter_lead >= 0);
ALTER TABLE maintenance_plans ALTER COLUMN interval_kind DROP NOT NULL;
-- a usage plan has a counter and no calendar interval, a calendar plan the other way round
ALTER TABLE maintenance_plans ADD CONSTRAINT maintenance_plans_usage_counter_check
    CHECK ((trigger = 'usage') = (counter_metric IS NOT NULL AND counter_every IS NOT NULL));
ALTER TABLE maintenance_plans ADD CONSTRAINT maintenance_plans_usage_interval_check
    CHECK ((counter_metric IS NULL) = (interval_kind IS NOT NULL) AND (counter_metric IS NULL OR interval_days IS NULL));
ALTER TABLE maintenance_plans ADD CONSTRAINT maintenance_plans_usage_lead_check
    CHECK (counter_every IS NULL OR counter_lead < counter_every);

-- Where each device stands on a usage plan: the counter value the current cycle counts
-- from (set when the plan first sees the device, moved on when a task is completed or
-- when the counter was reset), the reading its pace is measured from (pace_value at
-- baseline_at), the last value read, and a lower reading waiting for the next one to
-- tell a reset (the next counts on from it) from a glitch (it does not).
CREATE TABLE maintenance_counters (
    plan_id     uuid NOT NULL REFERENCES maintenance_plans(id),
    device_id   uuid NOT NULL REFERENCES devices(id),
    company_id  uuid NOT NULL REFERENCES companies(id),
    baseline    double precision NOT NULL,
    baseline_at timestamptz NOT NULL,
    pace_value  double precision NOT NULL,
    last_value  double precision NOT NULL,
    last_at     timestamptz NOT NULL,
    dropped_to  double precision,
    PRIMARY KEY (plan_id, device_id)
);
CREATE INDEX maintenance_counters_device_id_idx ON maintenance_counters (device_id);
CREATE INDEX maintenance_counters_company_id_idx ON maintenance_counters (company_id);

-- a usage task is due when the counter reaches this value; a device has at most one
-- pending task of a usage plan (its estimated due day moves with the device's pace)
ALTER TABLE maintenance_tasks ADD COLUMN due_counter double precision;
CREATE UNIQUE INDEX maintenance_tasks_usage_pending_key ON maintenance_tasks (plan_id, device_id)
    WHERE state = 'pending' AND due_counter IS NOT NULL;

-- 维修保养档案: a completed work order on a device is a repair record of the device's
-- archive, beside the maintenance records, with the parts it used.
ALTER TABLE maintenance_records ADD COLUMN kind text NOT NULL DEFAULT 'maintenance'
    CHECK (kind IN ('maintenance', 'repair'));
ALTER TABLE maintenance_records ADD COLUMN work_order_id uuid UNIQUE REFERENCES work_orders(id);
ALTER TABLE maintenance_records ADD CONSTRAINT maintenance_records_kind_work_order_check
    CHECK ((kind = 'repair') = (work_order_id IS NOT NULL));

INSERT INTO maintenance_records (id, company_id, project_id, device_id, done_at, staff_id, results, parts, notes,
                                 photos, kind, work_order_id)
SELECT id, company_id, project_id, device_id, completed_at, assignee_id, '[]', parts, result,
       -- photos of a home stay with the work order
       CASE WHEN house_id IS NULL AND owner_id IS NULL THEN result_photos ELSE '{}' END, 'repair', id
FROM work_orders
WHERE device_id IS NOT NULL AND assignee_id IS NOT NULL AND completed_at IS NOT NULL
  AND state IN ('completed', 'confirmed', 'closed');

-- 工单时限 (SLA): how long a project gives its orders to be taken on (response) and done
-- (completion), per category (NULL: any category) and priority; the escalation ladder's
-- progress on each order.
CREATE TABLE work_order_sla (
    id                 uuid PRIMARY KEY,
    company_id         uuid NOT NULL REFERENCES companies(id),
    project_id         uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    category           text CHECK (category IN ('plumbing', 'electrical', 'elevator', 'door_access', 'fire_safety',
                                                'hvac', 'civil', 'public_facility', 'other')),
    priority           text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    response_minutes   integer NOT NULL CHECK (response_minutes BETWEEN 1 AND 10080),
    completion_minutes integer NOT NULL CHECK (completion_minutes BETWEEN 1 AND 129600),
    updated_at         timestamptz NOT NULL,
    CONSTRAINT work_order_sla_key UNIQUE NULLS NOT DISTINCT (project_id, category, priority)
);
CREATE INDEX work_order_sla_company_id_idx ON work_order_sla (company_id);

-- deadlines on the Shanghai-independent clock (instants); the completion deadline moves by
-- the time spent paused
ALTER TABLE work_orders ADD COLUMN response_due_at timestamptz;
ALTER TABLE work_orders ADD COLUMN complete_due_at timestamptz;
-- 0: on time; 1: the technician (or the pool) was pushed; 2: the project manager was
-- pushed; 3: the manager got an SMS
ALTER TABLE work_orders ADD COLUMN response_level smallint NOT NULL DEFAULT 0 CHECK (response_level BETWEEN 0 AND 3);
ALTER TABLE work_orders ADD COLUMN completion_level smallint NOT NULL DEFAULT 0 CHECK (completion_level BETWEEN 0 AND 3);
CREATE INDEX work_orders_response_due_idx ON work_orders (response_due_at)
    WHERE accepted_at IS NULL AND state IN ('submitted', 'assigned');
CREATE INDEX work_orders_complete_due_idx ON work_orders (complete_due_at)
    WHERE state IN ('accepted', 'in_progress');

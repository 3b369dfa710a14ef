-- 维修与保养计划: plans per device or per category of a project, the tasks the scheduler
-- creates ahead of each due date, and the records that complete them.
CREATE TABLE maintenance_plans (
    id                  uuid PRIMARY KEY,
    company_id          uuid NOT NULL REFERENCES companies(id),
    project_id          uuid NOT NULL REFERENCES projects(id),
    device_id           uuid REFERENCES devices(id),
    category            text,
    name                text NOT NULL,
    checklist           text[] NOT NULL,
    interval_kind       text NOT NULL CHECK (interval_kind IN ('monthly', 'quarterly', 'yearly', 'days')),
    interval_days       integer CHECK (interval_days > 0),
    anchor              text NOT NULL CHECK (anchor IN ('schedule', 'completion')),
    start_date          date NOT NULL,
    lead_days           integer NOT NULL DEFAULT 3 CHECK (lead_days BETWEEN 0 AND 60),
    responsible_user_id uuid REFERENCES users(id),
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (device_id IS NOT NULL OR category IS NOT NULL),
    CHECK ((interval_kind = 'days') = (interval_days IS NOT NULL))
);
CREATE INDEX maintenance_plans_project_idx ON maintenance_plans (project_id);
CREATE INDEX maintenance_plans_company_id_idx ON maintenance_plans (company_id);
CREATE INDEX maintenance_plans_device_id_idx ON maintenance_plans (device_id);
CREATE INDEX maintenance_plans_responsible_user_id_idx ON maintenance_plans (responsible_user_id);

CREATE TABLE maintenance_tasks (
    id                  uuid PRIMARY KEY,
    company_id          uuid NOT NULL REFERENCES companies(id),
    project_id          uuid NOT NULL REFERENCES projects(id),
    plan_id             uuid NOT NULL REFERENCES maintenance_plans(id),
    device_id           uuid NOT NULL REFERENCES devices(id),
    due_date            date NOT NULL,
    assignee_id         uuid REFERENCES users(id),
    state               text NOT NULL CHECK (state IN ('pending', 'done', 'cancelled')),
    created_at          timestamptz NOT NULL,
    overdue_notified_at timestamptz,
    completed_at        timestamptz,
    CONSTRAINT maintenance_tasks_plan_device_due_key UNIQUE (plan_id, device_id, due_date)
);
CREATE INDEX maintenance_tasks_pending_idx ON maintenance_tasks (due_date) WHERE state = 'pending';
CREATE INDEX maintenance_tasks_project_idx ON maintenance_tasks (project_id, due_date);
CREATE INDEX maintenance_tasks_device_idx ON maintenance_tasks (device_id, due_date);
CREATE INDEX maintenance_tasks_company_id_idx ON maintenance_tasks (company_id);
CREATE INDEX maintenance_tasks_assignee_id_idx ON maintenance_tasks (assignee_id);

-- the device's maintenance archive
CREATE TABLE maintenance_records (
    id         uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies(id),
    project_id uuid NOT NULL REFERENCES projects(id),
    device_id  uuid NOT NULL REFERENCES devices(id),
    task_id    uuid UNIQUE REFERENCES maintenance_tasks(id),
    plan_id    uuid REFERENCES maintenance_plans(id),
    done_at    timestamptz NOT NULL,
    staff_id   uuid NOT NULL REFERENCES users(id),
    results    jsonb NOT NULL,
    parts      jsonb NOT NULL DEFAULT '[]',
    notes      text NOT NULL DEFAULT '',
    photos     text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX maintenance_records_device_idx ON maintenance_records (device_id, done_at DESC);
CREATE INDEX maintenance_records_plan_idx ON maintenance_records (plan_id, device_id, done_at DESC);
CREATE INDEX maintenance_records_company_id_idx ON maintenance_records (company_id);
CREATE INDEX maintenance_records_project_id_idx ON maintenance_records (project_id);
CREATE INDEX maintenance_records_staff_id_idx ON maintenance_records (staff_id);

-- 巡检: routes of QR checkpoints walked in order at scheduled times.
CREATE TABLE patrol_routes (
    id             uuid PRIMARY KEY,
    company_id     uuid NOT NULL REFERENCES companies(id),
    project_id     uuid NOT NULL REFERENCES projects(id),
    name           text NOT NULL,
    times          text[] NOT NULL,
    window_minutes integer NOT NULL CHECK (window_minutes BETWEEN 10 AND 720),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patrol_routes_project_idx ON patrol_routes (project_id);
CREATE INDEX patrol_routes_company_id_idx ON patrol_routes (company_id);

CREATE TABLE patrol_checkpoints (
    id        uuid PRIMARY KEY,
    route_id  uuid NOT NULL REFERENCES patrol_routes(id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    name      text NOT NULL,
    code      text NOT NULL,
    lat       double precision,
    lng       double precision,
    radius_m  integer NOT NULL DEFAULT 50,
    CONSTRAINT patrol_checkpoints_route_seq_key UNIQUE (route_id, seq),
    CONSTRAINT patrol_checkpoints_route_code_key UNIQUE (route_id, code)
);

CREATE TABLE patrol_tasks (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    route_id    uuid NOT NULL REFERENCES patrol_routes(id),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    state       text NOT NULL CHECK (state IN ('pending', 'completed', 'missed')),
    missed      text[] NOT NULL DEFAULT '{}',
    closed_at   timestamptz,
    CONSTRAINT patrol_tasks_route_start_key UNIQUE (route_id, starts_at)
);
CREATE INDEX patrol_tasks_open_idx ON patrol_tasks (ends_at) WHERE state = 'pending';
CREATE INDEX patrol_tasks_project_idx ON patrol_tasks (project_id, starts_at DESC);
CREATE INDEX patrol_tasks_company_id_idx ON patrol_tasks (company_id);

CREATE TABLE patrol_scans (
    id            uuid PRIMARY KEY,
    task_id       uuid NOT NULL REFERENCES patrol_tasks(id),
    checkpoint_id uuid NOT NULL REFERENCES patrol_checkpoints(id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users(id),
    scanned_at    timestamptz NOT NULL,
    lat           double precision NOT NULL,
    lng           double precision NOT NULL,
    distance_m    double precision,
    CONSTRAINT patrol_scans_task_checkpoint_key UNIQUE (task_id, checkpoint_id)
);
CREATE INDEX patrol_scans_checkpoint_id_idx ON patrol_scans (checkpoint_id);
CREATE INDEX patrol_scans_user_id_idx ON patrol_scans (user_id);

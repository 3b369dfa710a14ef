-- 工单 work orders: the repair flow from a report (an owner, customer service, a device
-- alarm, a failed maintenance item, staff for a public area) to the return visit.

-- 技能 the work-order categories a staff member can handle (dispatch prefers them)
ALTER TABLE users ADD COLUMN skills text[] NOT NULL DEFAULT '{}';

-- 派单设置 how a project hands out its work orders (a project without a row uses the defaults)
CREATE TABLE work_order_settings (
    project_id             uuid PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    company_id             uuid NOT NULL REFERENCES companies(id),
    dispatch               text NOT NULL DEFAULT 'grab' CHECK (dispatch IN ('manual', 'grab', 'round_robin', 'auto')),
    auto_confirm_days      integer NOT NULL DEFAULT 3 CHECK (auto_confirm_days BETWEEN 1 AND 30),
    reporter_relations     text[] NOT NULL DEFAULT '{owner,member,tenant}',
    visit_categories       text[] NOT NULL DEFAULT '{}',
    alarm_clear_grace_secs integer NOT NULL DEFAULT 300 CHECK (alarm_clear_grace_secs BETWEEN 0 AND 86400),
    last_assignee_id       uuid REFERENCES users(id),
    updated_at             timestamptz NOT NULL
);
CREATE INDEX work_order_settings_company_id_idx ON work_order_settings (company_id);
CREATE INDEX work_order_settings_last_assignee_id_idx ON work_order_settings (last_assignee_id);

CREATE TABLE work_orders (
    id              uuid PRIMARY KEY,
    -- the number people read out on the phone: GD + this, zero-padded
    no              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    company_id      uuid NOT NULL REFERENCES companies(id),
    project_id      uuid NOT NULL REFERENCES projects(id),
    source          text NOT NULL CHECK (source IN ('owner', 'service', 'alarm', 'maintenance', 'staff')),
    category        text NOT NULL CHECK (category IN ('plumbing', 'electrical', 'elevator', 'door_access', 'fire_safety',
                                                      'hvac', 'civil', 'public_facility', 'other')),
    priority        text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    state           text NOT NULL CHECK (state IN ('submitted', 'assigned', 'accepted', 'in_progress', 'paused',
                                                   'completed', 'confirmed', 'closed', 'cancelled')),
    -- the state a paused order returns to
    paused_from     text CHECK (paused_from IN ('accepted', 'in_progress')),
    title           text NOT NULL,
    description     text NOT NULL DEFAULT '',
    location        text NOT NULL DEFAULT '',
    house_id        uuid REFERENCES houses(id),
    device_id       uuid REFERENCES devices(id),
    -- the alarm rule whose alarms join this order while it is unfinished
    rule_id         uuid REFERENCES alarm_rules(id),
    -- what opened it: the first alarm, or the maintenance record whose failed items it carries
    origin_id       uuid,
    owner_id        uuid REFERENCES owners(id),
    reporter_id     uuid REFERENCES users(id),
    photos          text[] NOT NULL DEFAULT '{}',
    preferred_from  timestamptz,
    preferred_to    timestamptz,
    assignee_id     uuid REFERENCES users(id),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    assigned_at     timestamptz,
    accepted_at     timestamptz,
    started_at      timestamptz,
    paused_at       timestamptz,
    -- time spent paused (waiting for parts): the SLA clock stops meanwhile
    paused_secs     integer NOT NULL DEFAULT 0,
    completed_at    timestamptz,
    confirmed_at    timestamptz,
    closed_at       timestamptz,
    cancelled_at    timestamptz,
    result          text NOT NULL DEFAULT '',
    result_photos   text[] NOT NULL DEFAULT '{}',
    parts           jsonb NOT NULL DEFAULT '[]',
    labour_minutes  integer,
    charge          numeric(12, 2) CHECK (charge >= 0),
    cash_receipt_no text,
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    rating_comment  text NOT NULL DEFAULT '',
    visit_note      text NOT NULL DEFAULT '',
    cancel_reason   text NOT NULL DEFAULT '',
    -- when every alarm of the order had cleared by itself (a new one joining resets it)
    alarm_cleared_at timestamptz
);
CREATE INDEX work_orders_project_idx ON work_orders (project_id, created_at DESC, id DESC);
CREATE INDEX work_orders_project_state_idx ON work_orders (project_id, state, created_at DESC, id DESC);
CREATE INDEX work_orders_assignee_idx ON work_orders (assignee_id, created_at DESC, id DESC);
-- a technician's load, for least-loaded dispatch
CREATE INDEX work_orders_assignee_open_idx ON work_orders (assignee_id)
    WHERE state IN ('assigned', 'accepted', 'in_progress', 'paused');
CREATE INDEX work_orders_owner_idx ON work_orders (owner_id, created_at DESC);
CREATE INDEX work_orders_reporter_idx ON work_orders (reporter_id, created_at DESC);
CREATE INDEX work_orders_company_idx ON work_orders (company_id, created_at DESC, id DESC);
CREATE INDEX work_orders_house_id_idx ON work_orders (house_id);
CREATE INDEX work_orders_rule_id_idx ON work_orders (rule_id);
CREATE INDEX work_orders_device_idx ON work_orders (device_id, created_at DESC);
CREATE INDEX work_orders_origin_idx ON work_orders (origin_id);
-- one unfinished order per device and alarm rule: later alarms join it
CREATE UNIQUE INDEX work_orders_open_alarm_idx ON work_orders (device_id, rule_id)
    WHERE rule_id IS NOT NULL AND state IN ('submitted', 'assigned', 'accepted', 'in_progress', 'paused');
CREATE INDEX work_orders_cleared_idx ON work_orders (alarm_cleared_at) WHERE alarm_cleared_at IS NOT NULL;
CREATE INDEX work_orders_completed_idx ON work_orders (completed_at) WHERE state = 'completed';

-- 工单日志 every transition: who, when, from which state to which, a note, where
CREATE TABLE work_order_events (
    id            uuid PRIMARY KEY,
    work_order_id uuid NOT NULL REFERENCES work_orders(id) ON DELETE CASCADE,
    action        text NOT NULL CHECK (action IN ('submit', 'assign', 'grab', 'accept', 'return', 'transfer', 'start',
                                                  'pause', 'resume', 'complete', 'confirm', 'reject', 'visit', 'close',
                                                  'cancel', 'priority', 'join')),
    from_state    text,
    to_state      text NOT NULL,
    actor_id      uuid REFERENCES users(id),
    note          text NOT NULL DEFAULT '',
    lat           double precision,
    lng           double precision,
    at            timestamptz NOT NULL
);
CREATE INDEX work_order_events_order_idx ON work_order_events (work_order_id, at, id);
CREATE INDEX work_order_events_actor_id_idx ON work_order_events (actor_id);

-- every repair request opens or joins a work order
UPDATE repair_requests SET work_order_id = NULL WHERE work_order_id IS NOT NULL;
ALTER TABLE repair_requests
    ADD CONSTRAINT repair_requests_work_order_id_fkey FOREIGN KEY (work_order_id) REFERENCES work_orders(id);
CREATE INDEX repair_requests_work_order_id_idx ON repair_requests (work_order_id);
-- requests recorded before work orders existed: the scheduler opens orders for them
CREATE INDEX repair_requests_unlinked_idx ON repair_requests (created_at) WHERE work_order_id IS NULL AND status <> 'closed';

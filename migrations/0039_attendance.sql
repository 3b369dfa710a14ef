-- 考勤 attendance: shifts, rotas, the public-holiday calendar, punches from phones and
-- terminals, the daily results computed from them, corrections and leave.

-- 工号 the number an attendance terminal knows an employee by
ALTER TABLE employees ADD COLUMN employee_no text;
ALTER TABLE employees ADD CONSTRAINT employees_employee_no_key UNIQUE (company_id, employee_no);

-- 班次 a shift: an end at or before the start crosses midnight (equal: 24 hours)
CREATE TABLE shifts (
    id                     uuid PRIMARY KEY,
    company_id             uuid NOT NULL REFERENCES companies(id),
    -- NULL: offered to every project of the company
    project_id             uuid REFERENCES projects(id),
    name                   text NOT NULL,
    starts_at              time NOT NULL,
    ends_at                time NOT NULL,
    break_minutes          integer NOT NULL DEFAULT 0 CHECK (break_minutes BETWEEN 0 AND 600),
    late_grace_minutes     integer NOT NULL DEFAULT 0 CHECK (late_grace_minutes BETWEEN 0 AND 120),
    early_grace_minutes    integer NOT NULL DEFAULT 0 CHECK (early_grace_minutes BETWEEN 0 AND 120),
    -- late or early by more than this: the day counts as absent (旷工)
    absent_after_minutes   integer NOT NULL DEFAULT 240 CHECK (absent_after_minutes BETWEEN 1 AND 1440),
    -- staying past the end by at least this counts as overtime
    overtime_after_minutes integer NOT NULL DEFAULT 30 CHECK (overtime_after_minutes BETWEEN 0 AND 600),
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    CONSTRAINT shifts_name_key UNIQUE (company_id, name)
);
CREATE INDEX shifts_project_id_idx ON shifts (project_id);

-- 排班规则 a pattern: a week (Monday to Sunday) or a cycle (做二休一: day, day, rest);
-- a NULL slot is a day off
CREATE TABLE rota_patterns (
    id               uuid PRIMARY KEY,
    company_id       uuid NOT NULL REFERENCES companies(id),
    project_id       uuid NOT NULL REFERENCES projects(id),
    name             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('week', 'cycle')),
    slots            uuid[] NOT NULL,
    -- public holidays off and make-up working days worked (office hours), or the cycle runs on
    observe_holidays boolean NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT rota_patterns_name_key UNIQUE (project_id, name),
    CHECK ((kind = 'week' AND cardinality(slots) = 7) OR (kind = 'cycle' AND cardinality(slots) BETWEEN 1 AND 31))
);
CREATE INDEX rota_patterns_company_id_idx ON rota_patterns (company_id);

-- who follows which pattern over which days (a cycle counts from `from_day`); no two of an
-- employee's overlap (the service ends the earlier one)
CREATE TABLE rota_assignments (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    user_id     uuid NOT NULL REFERENCES users(id),
    pattern_id  uuid NOT NULL REFERENCES rota_patterns(id),
    from_day    date NOT NULL,
    to_day      date,
    created_by  uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    CHECK (to_day IS NULL OR to_day >= from_day)
);
CREATE INDEX rota_assignments_user_id_idx ON rota_assignments (user_id, from_day);
CREATE INDEX rota_assignments_project_id_idx ON rota_assignments (project_id, from_day);
CREATE INDEX rota_assignments_pattern_id_idx ON rota_assignments (pattern_id);
CREATE INDEX rota_assignments_created_by_idx ON rota_assignments (created_by);

-- 排班 a day set by hand (a swap, an extra shift, a day off); wins over the pattern
CREATE TABLE rota_days (
    user_id     uuid NOT NULL REFERENCES users(id),
    day         date NOT NULL,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    -- NULL: a day off
    shift_id    uuid REFERENCES shifts(id),
    set_by      uuid NOT NULL REFERENCES users(id),
    set_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE INDEX rota_days_project_id_idx ON rota_days (project_id, day);
CREATE INDEX rota_days_shift_id_idx ON rota_days (shift_id);
CREATE INDEX rota_days_company_id_idx ON rota_days (company_id);
CREATE INDEX rota_days_set_by_idx ON rota_days (set_by);

-- 法定节假日与调休 the calendar's exceptions as data: rows without a company are the
-- national calendar; a company's own row for a day replaces it ('ordinary': treat the day
-- as its weekday says)
CREATE TABLE calendar_days (
    company_id  uuid REFERENCES companies(id),
    day         date NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('holiday', 'workday', 'ordinary')),
    name        text NOT NULL,
    -- statutory days only, before the State Council publishes the year's arrangement
    provisional boolean NOT NULL DEFAULT false,
    CONSTRAINT calendar_days_key UNIQUE NULLS NOT DISTINCT (company_id, day)
);
CREATE INDEX calendar_days_day_idx ON calendar_days (day);

-- 2026 as published (国办发明电〔2025〕): holidays and the make-up working days
INSERT INTO calendar_days (company_id, day, kind, name) VALUES
    (NULL, '2026-01-01', 'holiday', '元旦'), (NULL, '2026-01-02', 'holiday', '元旦'), (NULL, '2026-01-03', 'holiday', '元旦'),
    (NULL, '2026-01-04', 'workday', '元旦调休'),
    (NULL, '2026-02-14', 'workday', '春节调休'),
    (NULL, '2026-02-15', 'holiday', '春节'), (NULL, '2026-02-16', 'holiday', '春节'), (NULL, '2026-02-17', 'holiday', '春节'),
    (NULL, '2026-02-18', 'holiday', '春节'), (NULL, '2026-02-19', 'holiday', '春节'), (NULL, '2026-02-20', 'holiday', '春节'),
    (NULL, '2026-02-21', 'holiday', '春节'), (NULL, '2026-02-22', 'holiday', '春节'), (NULL, '2026-02-23', 'holiday', '春节'),
    (NULL, '2026-02-28', 'workday', '春节调休'),
    (NULL, '2026-04-04', 'holiday', '清明节'), (NULL, '2026-04-05', 'holiday', '清明节'), (NULL, '2026-04-06', 'holiday', '清明节'),
    (NULL, '2026-05-01', 'holiday', '劳动节'), (NULL, '2026-05-02', 'holiday', '劳动节'), (NULL, '2026-05-03', 'holiday', '劳动节'),
    (NULL, '2026-05-04', 'holiday', '劳动节'), (NULL, '2026-05-05', 'holiday', '劳动节'),
    (NULL, '2026-05-09', 'workday', '劳动节调休'),
    (NULL, '2026-06-19', 'holiday', '端午节'), (NULL, '2026-06-20', 'holiday', '端午节'), (NULL, '2026-06-21', 'holiday', '端午节'),
    (NULL, '2026-09-20', 'workday', '国庆节调休'),
    (NULL, '2026-09-25', 'holiday', '中秋节'), (NULL, '2026-09-26', 'holiday', '中秋节'), (NULL, '2026-09-27', 'holiday', '中秋节'),
    (NULL, '2026-10-01', 'holiday', '国庆节'), (NULL, '2026-10-02', 'holiday', '国庆节'), (NULL, '2026-10-03', 'holiday', '国庆节'),
    (NULL, '2026-10-04', 'holiday', '国庆节'), (NULL, '2026-10-05', 'holiday', '国庆节'), (NULL, '2026-10-06', 'holiday', '国庆节'),
    (NULL, '2026-10-07', 'holiday', '国庆节'),
    (NULL, '2026-10-10', 'workday', '国庆节调休');

-- 2027: the statutory days by law (全国年节及纪念日放假办法, 2025 revision) on the lunar and
-- solar dates; the year's bridging days and make-up working days come with the State
-- Council's notice, which an administrator enters over these (provisional until then)
INSERT INTO calendar_days (company_id, day, kind, name, provisional) VALUES
    (NULL, '2027-01-01', 'holiday', '元旦', true),
    (NULL, '2027-02-05', 'holiday', '春节', true), (NULL, '2027-02-06', 'holiday', '春节', true),
    (NULL, '2027-02-07', 'holiday', '春节', true), (NULL, '2027-02-08', 'holiday', '春节', true),
    (NULL, '2027-04-05', 'holiday', '清明节', true),
    (NULL, '2027-05-01', 'holiday', '劳动节', true), (NULL, '2027-05-02', 'holiday', '劳动节', true),
    (NULL, '2027-06-09', 'holiday', '端午节', true),
    (NULL, '2027-09-15', 'holiday', '中秋节', true),
    (NULL, '2027-10-01', 'holiday', '国庆节', true), (NULL, '2027-10-02', 'holiday', '国庆节', true),
    (NULL, '2027-10-03', 'holiday', '国庆节', true);

-- 考勤机 a fingerprint or face terminal: its key signs what it sends (stored encrypted)
CREATE TABLE attendance_terminals (
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL REFERENCES companies(id),
    project_id   uuid NOT NULL REFERENCES projects(id),
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('fingerprint', 'face')),
    key_enc      bytea NOT NULL,
    enabled      boolean NOT NULL DEFAULT true,
    last_seen_at timestamptz,
    created_at   timestamptz NOT NULL,
    CONSTRAINT attendance_terminals_name_key UNIQUE (company_id, name)
);
CREATE INDEX attendance_terminals_project_id_idx ON attendance_terminals (project_id);

-- 补签 and 请假: a request an approver with `attendance:approve` decides
CREATE TABLE attendance_requests (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid NOT NULL REFERENCES projects(id),
    user_id     uuid NOT NULL REFERENCES users(id),
    kind        text NOT NULL CHECK (kind IN ('correction', 'leave')),
    leave_type  text CHECK (leave_type IN ('annual', 'sick', 'personal', 'marriage', 'maternity', 'paternity',
                                          'bereavement', 'compensatory', 'other')),
    -- a correction's punch time, or the leave's start
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    direction   text CHECK (direction IN ('in', 'out')),
    reason      text NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at  timestamptz NOT NULL,
    decided_at  timestamptz,
    CHECK ((kind = 'leave') = (leave_type IS NOT NULL AND ends_at IS NOT NULL AND ends_at > starts_at)),
    CHECK ((kind = 'correction') = (direction IS NOT NULL))
);
CREATE INDEX attendance_requests_user_id_idx ON attendance_requests (user_id, starts_at);
CREATE INDEX attendance_requests_project_id_idx ON attendance_requests (project_id, status);
CREATE INDEX attendance_requests_company_id_idx ON attendance_requests (company_id);

-- 打卡 a punch: its time is the one the phone or terminal recorded (queued offline, sent later)
CREATE TABLE punches (
    id              uuid PRIMARY KEY,
    company_id      uuid NOT NULL REFERENCES companies(id),
    project_id      uuid NOT NULL REFERENCES projects(id),
    user_id         uuid NOT NULL REFERENCES users(id),
    at              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    source          text NOT NULL CHECK (source IN ('phone', 'terminal', 'correction')),
    -- NULL: the terminal does not say; the day's first punch is the arrival, the last the departure
    direction       text CHECK (direction IN ('in', 'out')),
    lat             double precision,
    lng             double precision,
    accuracy_m      double precision,
    distance_m      double precision,
    terminal_id     uuid REFERENCES attendance_terminals(id),
    terminal_record text,
    request_id      uuid REFERENCES attendance_requests(id),
    CONSTRAINT punches_terminal_record_key UNIQUE (terminal_id, terminal_record),
    CHECK ((source = 'terminal') = (terminal_id IS NOT NULL AND terminal_record IS NOT NULL)),
    CHECK ((source = 'correction') = (request_id IS NOT NULL))
);
CREATE INDEX punches_user_id_idx ON punches (user_id, at);
CREATE INDEX punches_project_id_idx ON punches (project_id, at);
CREATE INDEX punches_company_id_idx ON punches (company_id);
CREATE INDEX punches_request_id_idx ON punches (request_id);

-- 考勤结果 one employee's day, computed from the rota, the punches and approved leave;
-- `settled` once the day's punching window has closed
CREATE TABLE attendance_days (
    user_id          uuid NOT NULL REFERENCES users(id),
    day              date NOT NULL,
    company_id       uuid NOT NULL REFERENCES companies(id),
    project_id       uuid REFERENCES projects(id),
    shift_id         uuid REFERENCES shifts(id),
    kind             text NOT NULL CHECK (kind IN ('workday', 'rest', 'holiday')),
    status           text NOT NULL CHECK (status IN ('normal', 'late', 'early_leave', 'late_and_early', 'missing_punch',
                                                     'absent', 'leave', 'rest', 'in_progress')),
    expected_start   timestamptz,
    expected_end     timestamptz,
    first_punch      timestamptz,
    last_punch       timestamptz,
    late_minutes     integer NOT NULL DEFAULT 0,
    early_minutes    integer NOT NULL DEFAULT 0,
    missing_punches  integer NOT NULL DEFAULT 0 CHECK (missing_punches BETWEEN 0 AND 2),
    leave_minutes    integer NOT NULL DEFAULT 0,
    worked_minutes   integer NOT NULL DEFAULT 0,
    overtime_minutes integer NOT NULL DEFAULT 0,
    settled          boolean NOT NULL,
    computed_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE INDEX attendance_days_company_id_idx ON attendance_days (company_id, day);
CREATE INDEX attendance_days_project_id_idx ON attendance_days (project_id, day);
CREATE INDEX attendance_days_shift_id_idx ON attendance_days (shift_id);

ALTER TABLE approvals DROP CONSTRAINT approvals_kind_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_kind_check
    CHECK (kind IN ('late_fee_waiver', 'refund', 'bill_adjustment', 'vacancy_relief', 'attendance'));

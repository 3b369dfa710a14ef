-- Notifications: one row per recipient is both the outbox (dispatch state) and the
-- in-app inbox entry. Deliveries record the outcome per channel; attempts every try.

CREATE TABLE notifications (
    id              uuid PRIMARY KEY,
    company_id      uuid NOT NULL REFERENCES companies(id),
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    category        text NOT NULL CHECK (category IN ('security', 'alarm', 'work_order', 'bill', 'attendance', 'announcement', 'system')),
    priority        text NOT NULL CHECK (priority IN ('normal', 'high', 'critical')),
    title           text NOT NULL,
    body            text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    channels        text[] NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    give_up_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    read_at         timestamptz
);
-- the dispatcher's queue: only rows still to send
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';
-- the inbox: newest first per user
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;
CREATE INDEX notifications_company_id_idx ON notifications (company_id);

CREATE TABLE notification_deliveries (
    notification_id uuid NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('push', 'sms', 'inapp')),
    status          text NOT NULL CHECK (status IN ('sent', 'failed', 'skipped')),
    detail          text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, channel)
);

CREATE TABLE notification_attempts (
    id              uuid PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    channel         text NOT NULL,
    ok              boolean NOT NULL,
    error           text,
    retry_after_secs integer,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_attempts_notification_id_idx ON notification_attempts (notification_id);

-- 推送设备 a phone's push token; one user at a time (re-registering moves it)
CREATE TABLE push_devices (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token       text NOT NULL,
    platform    text NOT NULL CHECK (platform IN ('android', 'ios')),
    provider    text NOT NULL CHECK (provider IN ('fcm', 'jpush')),
    app         text NOT NULL CHECK (app IN ('owner', 'staff')),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT push_devices_token_key UNIQUE (provider, token)
);
CREATE INDEX push_devices_user_id_idx ON push_devices (user_id) WHERE active;

-- Per-user notification preferences, quiet hours, and announcements with read receipts.

CREATE TABLE notification_prefs (
    user_id  uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    category text NOT NULL,
    channel  text NOT NULL CHECK (channel IN ('push', 'sms', 'inapp')),
    enabled  boolean NOT NULL,
    PRIMARY KEY (user_id, category, channel)
);

-- 免打扰 quiet hours for non-critical push, minutes after midnight in Asia/Shanghai
CREATE TABLE quiet_hours (
    user_id      uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    start_minute integer NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute   integer NOT NULL CHECK (end_minute BETWEEN 0 AND 1439)
);

-- 公告 a notice to a project's owners (all, or one building) or to its staff
CREATE TABLE announcements (
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL REFERENCES companies(id),
    project_id   uuid NOT NULL REFERENCES projects(id),
    audience     text NOT NULL CHECK (audience IN ('owners', 'building', 'staff')),
    building_id  uuid REFERENCES buildings(id),
    title        text NOT NULL,
    body         text NOT NULL,
    pinned       boolean NOT NULL DEFAULT false,
    expires_at   timestamptz,
    published_by uuid NOT NULL REFERENCES users(id),
    published_at timestamptz NOT NULL,
    recipients   integer NOT NULL DEFAULT 0,
    CHECK ((audience = 'building') = (building_id IS NOT NULL))
);
CREATE INDEX announcements_project_idx ON announcements (project_id, published_at DESC);
CREATE INDEX announcements_company_id_idx ON announcements (company_id);
CREATE INDEX announcements_building_id_idx ON announcements (building_id);
CREATE INDEX announcements_published_by_idx ON announcements (published_by);

CREATE TABLE announcement_reads (
    announcement_id uuid NOT NULL REFERENCES announcements(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    read_at         timestamptz NOT NULL,
    PRIMARY KEY (announcement_id, user_id)
);
CREATE INDEX announcement_reads_user_id_idx ON announcement_reads (user_id);

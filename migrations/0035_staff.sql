-- 员工档案 the employee record of a staff account: name and phone stay on the account
-- (never copied); the ID-card number is encrypted with a blind index, like owners'.
CREATE TABLE employees (
    user_id         uuid PRIMARY KEY REFERENCES users(id),
    company_id      uuid NOT NULL REFERENCES companies(id),
    gender          text CHECK (gender IN ('male', 'female')),
    id_card_enc     bytea,
    id_card_idx     bytea,
    hire_date       date,
    position        text NOT NULL DEFAULT '',
    department      text NOT NULL DEFAULT '',
    photo_key       text REFERENCES files(key),
    status          text NOT NULL CHECK (status IN ('active', 'on_leave', 'left')),
    left_on         date,
    emergency_name  text NOT NULL DEFAULT '',
    emergency_phone text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT employees_company_id_card_key UNIQUE (company_id, id_card_idx),
    CHECK ((status = 'left') = (left_on IS NOT NULL))
);
CREATE INDEX employees_company_id_idx ON employees (company_id, status);
CREATE INDEX employees_photo_key_idx ON employees (photo_key);

-- 资质证书 a licence for a special post; none expires silently
CREATE TABLE certificates (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    user_id     uuid NOT NULL REFERENCES users(id),
    kind        text NOT NULL CHECK (kind IN ('electrician', 'security_guard', 'elevator_safety', 'fire_control',
                                              'welder', 'boiler', 'other')),
    number      text NOT NULL,
    issuer      text NOT NULL,
    issued_on   date NOT NULL,
    expires_on  date,
    scan_key    text REFERENCES files(key),
    created_by  uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CHECK (expires_on IS NULL OR expires_on >= issued_on),
    CONSTRAINT certificates_number_key UNIQUE (company_id, kind, number)
);
CREATE INDEX certificates_user_id_idx ON certificates (user_id, kind);
CREATE INDEX certificates_company_id_idx ON certificates (company_id, expires_on);
CREATE INDEX certificates_created_by_idx ON certificates (created_by);
CREATE INDEX certificates_scan_key_idx ON certificates (scan_key);

-- reminders before a certificate expires (30 and 7 days), once per step and expiry date
-- (a renewal arms them again)
CREATE TABLE certificate_reminders (
    certificate_id uuid NOT NULL REFERENCES certificates(id) ON DELETE CASCADE,
    days           integer NOT NULL CHECK (days > 0),
    expires_on     date NOT NULL,
    sent_at        timestamptz NOT NULL,
    PRIMARY KEY (certificate_id, expires_on, days)
);

-- work that needs a licence: dispatch offers it only to holders of a valid one
CREATE TABLE certificate_requirements (
    company_id  uuid NOT NULL REFERENCES companies(id),
    category    text NOT NULL CHECK (category IN ('plumbing', 'electrical', 'elevator', 'door_access', 'fire_safety',
                                                  'hvac', 'civil', 'public_facility', 'other')),
    kind        text NOT NULL CHECK (kind IN ('electrician', 'security_guard', 'elevator_safety', 'fire_control',
                                              'welder', 'boiler', 'other')),
    PRIMARY KEY (company_id, category, kind)
);

-- staff photos and certificate scans are private files; records and certificates notify
-- in a category of their own
ALTER TABLE files DROP CONSTRAINT files_purpose_check;
ALTER TABLE files ADD CONSTRAINT files_purpose_check
    CHECK (purpose IN ('work_order', 'feedback', 'maintenance', 'staff', 'bill', 'receipt'));
ALTER TABLE notifications DROP CONSTRAINT notifications_category_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_category_check
    CHECK (category IN ('security', 'alarm', 'work_order', 'feedback', 'bill', 'attendance', 'staff', 'announcement',
                        'system'));
ALTER TABLE notification_prefs DROP CONSTRAINT notification_prefs_category_check;
ALTER TABLE notification_prefs ADD CONSTRAINT notification_prefs_category_check
    CHECK (category IN ('security', 'alarm', 'work_order', 'feedback', 'bill', 'attendance', 'staff', 'announcement',
                        'system'));

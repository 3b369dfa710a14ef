-- 私有文件 private uploads: photos of people's homes and of equipment. A record names a
-- file by its key; only the uploader may attach it, and it is served only through a
-- short-lived signed URL to those who may read the record.
CREATE TABLE files (
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL REFERENCES companies(id),
    uploaded_by  uuid NOT NULL REFERENCES users(id),
    purpose      text NOT NULL CHECK (purpose IN ('work_order', 'feedback', 'maintenance')),
    key          text NOT NULL UNIQUE,
    content_type text NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    created_at   timestamptz NOT NULL
);
CREATE INDEX files_company_id_idx ON files (company_id);
CREATE INDEX files_uploaded_by_idx ON files (uploaded_by, key);

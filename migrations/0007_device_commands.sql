-- 远程控制: commands sent to devices over MQTT, with the device's acknowledgement.
CREATE TABLE device_commands (
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL REFERENCES companies(id),
    project_id   uuid NOT NULL REFERENCES projects(id),
    device_id    uuid NOT NULL REFERENCES devices(id),
    kind         text NOT NULL,
    params       jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL CHECK (status IN ('sent', 'succeeded', 'failed')),
    result       text NOT NULL DEFAULT '',
    requested_by uuid NOT NULL REFERENCES users(id),
    sent_at      timestamptz NOT NULL,
    finished_at  timestamptz
);
CREATE INDEX device_commands_device_idx ON device_commands (device_id, sent_at DESC);
CREATE INDEX device_commands_pending_idx ON device_commands (sent_at) WHERE status = 'sent';
CREATE INDEX device_commands_company_id_idx ON device_commands (company_id);
CREATE INDEX device_commands_project_id_idx ON device_commands (project_id);
CREATE INDEX device_commands_requested_by_idx ON device_commands (requested_by);

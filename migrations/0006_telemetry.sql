-- Device telemetry history: one row per metric reading, appended in batches. BRIN on the
-- time column keeps the index tiny for an append-only, time-ordered table; the btree
-- serves per-device trend queries.
CREATE TABLE telemetry (
    device_id uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    metric    text NOT NULL,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL
);
CREATE INDEX telemetry_ts_brin ON telemetry USING brin (ts);
CREATE INDEX telemetry_device_metric_ts_idx ON telemetry (device_id, metric, ts);

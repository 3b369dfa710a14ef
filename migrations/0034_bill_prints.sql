-- 账单通知 go out after the run commits (and after prepaid balances paid what they
-- could): the run remembers whether its notices were queued. Runs before this were
-- notified in their own transaction.
ALTER TABLE bill_runs ADD COLUMN notices integer, ADD COLUMN notified_at timestamptz;
UPDATE bill_runs SET notified_at = created_at;
CREATE INDEX bill_runs_unnotified_idx ON bill_runs (created_at) WHERE notified_at IS NULL;

-- generated documents (printed bills, receipts) are private files too; only photos may be
-- attached to records
ALTER TABLE files DROP CONSTRAINT files_purpose_check;
ALTER TABLE files ADD CONSTRAINT files_purpose_check
    CHECK (purpose IN ('work_order', 'feedback', 'maintenance', 'bill', 'receipt'));

-- 打印账单 a run's bills as one PDF (one page per bill), rendered in the background
CREATE TABLE bill_prints (
    id            uuid PRIMARY KEY,
    company_id    uuid NOT NULL REFERENCES companies(id),
    run_id        uuid NOT NULL REFERENCES bill_runs(id),
    building_ids  uuid[] NOT NULL,
    status        text NOT NULL CHECK (status IN ('queued', 'rendering', 'done', 'failed')),
    pages         integer NOT NULL DEFAULT 0 CHECK (pages >= 0),
    rendered      integer NOT NULL DEFAULT 0 CHECK (rendered >= 0),
    file_key      text REFERENCES files(key),
    error         text,
    attempts      integer NOT NULL DEFAULT 0,
    lease_until   timestamptz,
    requested_by  uuid NOT NULL REFERENCES users(id),
    created_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    CHECK ((status = 'done') = (file_key IS NOT NULL))
);
CREATE INDEX bill_prints_run_idx ON bill_prints (run_id, created_at);
CREATE INDEX bill_prints_company_id_idx ON bill_prints (company_id);
CREATE INDEX bill_prints_requested_by_idx ON bill_prints (requested_by);
CREATE INDEX bill_prints_file_key_idx ON bill_prints (file_key);
CREATE INDEX bill_prints_due_idx ON bill_prints (created_at) WHERE status IN ('queued', 'rendering');

-- 审批 one approval mechanism: a request by one person, decided by another who holds the
-- approver permission over its project (maker ≠ checker), with reasons, audited; the
-- domain that asked applies the approved change in the decision's transaction.
CREATE TABLE approvals (
    id            uuid PRIMARY KEY,
    company_id    uuid NOT NULL REFERENCES companies(id),
    project_id    uuid REFERENCES projects(id),
    kind          text NOT NULL CHECK (kind IN ('late_fee_waiver')),
    subject_id    uuid NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    reason        text NOT NULL,
    approver_perm text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by  uuid NOT NULL REFERENCES users(id),
    requested_at  timestamptz NOT NULL,
    decided_by    uuid REFERENCES users(id),
    decided_at    timestamptz,
    decision_note text,
    CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
-- one open request per subject and kind
CREATE UNIQUE INDEX approvals_open_key ON approvals (kind, subject_id) WHERE status = 'pending';
CREATE INDEX approvals_company_idx ON approvals (company_id, status, id);
CREATE INDEX approvals_project_id_idx ON approvals (project_id);
CREATE INDEX approvals_requested_by_idx ON approvals (requested_by);
CREATE INDEX approvals_decided_by_idx ON approvals (decided_by);

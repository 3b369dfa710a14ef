-- 催缴 reminders of overdue bills: a project's schedule (days after the due date), and
-- each reminder sent, per bill (a scheduled step once; reminders by hand as step 0)
CREATE TABLE dunning_policies (
    project_id     uuid PRIMARY KEY REFERENCES projects(id),
    company_id     uuid NOT NULL REFERENCES companies(id),
    days_after_due integer[] NOT NULL CHECK (cardinality(days_after_due) BETWEEN 1 AND 10),
    updated_by     uuid NOT NULL REFERENCES users(id),
    updated_at     timestamptz NOT NULL
);
CREATE INDEX dunning_policies_company_id_idx ON dunning_policies (company_id);
CREATE INDEX dunning_policies_updated_by_idx ON dunning_policies (updated_by);

CREATE TABLE bill_reminders (
    id         uuid PRIMARY KEY,
    bill_id    uuid NOT NULL REFERENCES bills(id),
    company_id uuid NOT NULL REFERENCES companies(id),
    step       integer NOT NULL CHECK (step >= 0),
    owed       numeric(14, 2) NOT NULL,
    sent_by    uuid REFERENCES users(id),
    sent_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX bill_reminders_step_key ON bill_reminders (bill_id, step) WHERE step > 0;
CREATE INDEX bill_reminders_bill_id_idx ON bill_reminders (bill_id, sent_at);
CREATE INDEX bill_reminders_company_id_idx ON bill_reminders (company_id);
CREATE INDEX bill_reminders_sent_by_idx ON bill_reminders (sent_by);

-- what was sent about a bill (run notices, reminders, payments): staff see its delivery
CREATE INDEX notifications_subject_idx ON notifications ((data ->> 'id')) WHERE data ? 'route';

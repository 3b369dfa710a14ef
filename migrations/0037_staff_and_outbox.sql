-- leaving disables an active account; coming back enables only an account leaving disabled
ALTER TABLE employees ADD COLUMN disabled_account boolean NOT NULL DEFAULT false;

-- the outbox takes critical notifications first through an index of their own, and the
-- rest in due order through notifications_due_idx (no sort of every pending row per batch)
CREATE INDEX notifications_due_critical_idx ON notifications (next_attempt_at)
    WHERE status = 'pending' AND priority = 'critical';

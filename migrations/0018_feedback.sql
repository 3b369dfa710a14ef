-- 客服 owner feedback: complaints, suggestions, praise and enquiries about a house or a
-- public area, answered by the project's customer service (a conversation), turned into a
-- work order where something needs repair, closed, and rated by the owner.
CREATE TABLE feedback (
    id              uuid PRIMARY KEY,
    company_id      uuid NOT NULL REFERENCES companies(id),
    project_id      uuid NOT NULL REFERENCES projects(id),
    owner_id        uuid NOT NULL REFERENCES owners(id),
    reporter_id     uuid NOT NULL REFERENCES users(id),
    house_id        uuid REFERENCES houses(id),
    kind            text NOT NULL CHECK (kind IN ('complaint', 'suggestion', 'praise', 'enquiry')),
    content         text NOT NULL,
    photos          text[] NOT NULL DEFAULT '{}',
    state           text NOT NULL CHECK (state IN ('open', 'replied', 'closed')),
    work_order_id   uuid REFERENCES work_orders(id),
    respond_due_at  timestamptz NOT NULL,
    escalated_at    timestamptz,
    first_reply_at  timestamptz,
    closed_at       timestamptz,
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    rating_comment  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX feedback_project_idx ON feedback (project_id, state, created_at DESC, id DESC);
CREATE INDEX feedback_owner_idx ON feedback (owner_id, created_at DESC);
CREATE INDEX feedback_company_id_idx ON feedback (company_id);
CREATE INDEX feedback_reporter_id_idx ON feedback (reporter_id);
CREATE INDEX feedback_house_id_idx ON feedback (house_id);
CREATE INDEX feedback_work_order_id_idx ON feedback (work_order_id);

-- the conversation: the owner's words and customer service's replies, oldest first
CREATE TABLE feedback_messages (
    id          uuid PRIMARY KEY,
    feedback_id uuid NOT NULL REFERENCES feedback(id) ON DELETE CASCADE,
    author_id   uuid NOT NULL REFERENCES users(id),
    from_staff  boolean NOT NULL,
    body        text NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX feedback_messages_feedback_idx ON feedback_messages (feedback_id, at, id);
CREATE INDEX feedback_messages_author_id_idx ON feedback_messages (author_id);

-- a notification category of its own, so owners can mute it apart from repairs
ALTER TABLE notifications DROP CONSTRAINT notifications_category_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_category_check
    CHECK (category IN ('security', 'alarm', 'work_order', 'feedback', 'bill', 'attendance', 'announcement', 'system'));
ALTER TABLE notification_prefs DROP CONSTRAINT notification_prefs_category_check;
ALTER TABLE notification_prefs ADD CONSTRAINT notification_prefs_category_check
    CHECK (category IN ('security', 'alarm', 'work_order', 'feedback', 'bill', 'attendance', 'announcement', 'system'));

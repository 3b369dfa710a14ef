-- 员工考核: a question bank by topic, exams that draw from it, attempts whose clock the
-- server keeps and which it grades, practical assessments a trainer scores.

-- 题库 a question: its options, and the indexes of the right ones (never shown before an
-- attempt is submitted)
CREATE TABLE exam_questions (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    topic       text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('single', 'multiple', 'true_false')),
    stem        text NOT NULL,
    options     text[] NOT NULL,
    answer      smallint[] NOT NULL,
    explanation text NOT NULL DEFAULT '',
    archived    boolean NOT NULL DEFAULT false,
    created_by  uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CHECK (cardinality(options) BETWEEN 2 AND 8),
    CHECK (cardinality(answer) BETWEEN 1 AND cardinality(options))
);
CREATE INDEX exam_questions_company_id_idx ON exam_questions (company_id, topic) WHERE NOT archived;
CREATE INDEX exam_questions_created_by_idx ON exam_questions (created_by);

-- 考试: how many questions of each topic, the time limit, attempts allowed, the pass mark
CREATE TABLE exams (
    id                 uuid PRIMARY KEY,
    company_id         uuid NOT NULL REFERENCES companies(id),
    project_id         uuid REFERENCES projects(id),
    title              text NOT NULL,
    -- [{"topic": "电梯安全", "count": 10}, …]
    draws              jsonb NOT NULL,
    time_limit_minutes integer NOT NULL CHECK (time_limit_minutes BETWEEN 1 AND 600),
    attempts_allowed   integer NOT NULL CHECK (attempts_allowed BETWEEN 1 AND 10),
    pass_mark          integer NOT NULL CHECK (pass_mark BETWEEN 0 AND 100),
    opens_at           timestamptz NOT NULL,
    closes_at          timestamptz NOT NULL,
    created_by         uuid NOT NULL REFERENCES users(id),
    created_at         timestamptz NOT NULL,
    CHECK (closes_at > opens_at)
);
CREATE INDEX exams_company_id_idx ON exams (company_id, opens_at);
CREATE INDEX exams_project_id_idx ON exams (project_id);
CREATE INDEX exams_created_by_idx ON exams (created_by);

-- who sits an exam
CREATE TABLE exam_candidates (
    exam_id  uuid NOT NULL REFERENCES exams(id),
    user_id  uuid NOT NULL REFERENCES users(id),
    PRIMARY KEY (exam_id, user_id)
);
CREATE INDEX exam_candidates_user_id_idx ON exam_candidates (user_id);

-- 答卷 one attempt: the questions drawn in the order shown, each question's options in the
-- order shown, the answers given before the deadline, and the grade once submitted
CREATE TABLE exam_attempts (
    id            uuid PRIMARY KEY,
    exam_id       uuid NOT NULL REFERENCES exams(id),
    company_id    uuid NOT NULL REFERENCES companies(id),
    user_id       uuid NOT NULL REFERENCES users(id),
    number        integer NOT NULL CHECK (number >= 1),
    started_at    timestamptz NOT NULL,
    deadline      timestamptz NOT NULL,
    submitted_at  timestamptz,
    questions     uuid[] NOT NULL,
    -- {"questionId": [original option index in the order shown], …}
    option_orders jsonb NOT NULL,
    -- {"questionId": [original option indexes chosen], …}
    answers       jsonb NOT NULL DEFAULT '{}',
    score         numeric(5,2),
    passed        boolean,
    CONSTRAINT exam_attempts_number_key UNIQUE (exam_id, user_id, number),
    CHECK ((submitted_at IS NULL) = (score IS NULL) AND (score IS NULL) = (passed IS NULL))
);
CREATE INDEX exam_attempts_user_id_idx ON exam_attempts (user_id, exam_id);
CREATE INDEX exam_attempts_company_id_idx ON exam_attempts (company_id);
CREATE INDEX exam_attempts_open_idx ON exam_attempts (deadline) WHERE submitted_at IS NULL;

-- 实操考核 a practical assessment a trainer scored
CREATE TABLE practical_scores (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    project_id  uuid REFERENCES projects(id),
    user_id     uuid NOT NULL REFERENCES users(id),
    title       text NOT NULL,
    score       numeric(5,2) NOT NULL CHECK (score BETWEEN 0 AND 100),
    passed      boolean NOT NULL,
    note        text NOT NULL DEFAULT '',
    scored_by   uuid NOT NULL REFERENCES users(id),
    scored_at   timestamptz NOT NULL
);
CREATE INDEX practical_scores_user_id_idx ON practical_scores (user_id, scored_at);
CREATE INDEX practical_scores_company_id_idx ON practical_scores (company_id);
CREATE INDEX practical_scores_project_id_idx ON practical_scores (project_id);
CREATE INDEX practical_scores_scored_by_idx ON practical_scores (scored_by);

ALTER TABLE notifications DROP CONSTRAINT notifications_category_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_category_check
    CHECK (category IN ('security', 'alarm', 'work_order', 'feedback', 'bill', 'attendance', 'staff', 'training',
                        'announcement', 'system'));
ALTER TABLE notification_prefs DROP CONSTRAINT notification_prefs_category_check;
ALTER TABLE notification_prefs ADD CONSTRAINT notification_prefs_category_check
    CHECK (category IN ('security', 'alarm', 'work_order', 'feedback', 'bill', 'attendance', 'staff', 'training',
                        'announcement', 'system'));

-- attendance: how many of a day's punches were sent well after they were taken (queued
-- offline on the phone or a terminal): managers see them in the day and the month
ALTER TABLE attendance_days ADD COLUMN offline_punches integer NOT NULL DEFAULT 0;

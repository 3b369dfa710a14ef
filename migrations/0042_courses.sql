-- 员工培训: courses with their materials (private PDF and video files), sessions with a time,
-- a place, a trainer and attendees, and who came.
CREATE TABLE courses (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    -- NULL: company-wide
    project_id  uuid REFERENCES projects(id),
    title       text NOT NULL,
    content     text NOT NULL DEFAULT '',
    -- 培训对象, as the company words it (岗位, 部门)
    audience    text NOT NULL DEFAULT '',
    created_by  uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX courses_company_id_idx ON courses (company_id);
CREATE INDEX courses_project_id_idx ON courses (project_id);
CREATE INDEX courses_created_by_idx ON courses (created_by);

CREATE TABLE course_materials (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    course_id   uuid NOT NULL REFERENCES courses(id),
    file_key    text NOT NULL REFERENCES files(key),
    kind        text NOT NULL CHECK (kind IN ('pdf', 'video')),
    name        text NOT NULL,
    size_bytes  bigint NOT NULL,
    created_by  uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL
);
CREATE INDEX course_materials_course_id_idx ON course_materials (course_id);
CREATE INDEX course_materials_company_id_idx ON course_materials (company_id);
CREATE INDEX course_materials_file_key_idx ON course_materials (file_key);
CREATE INDEX course_materials_created_by_idx ON course_materials (created_by);

CREATE TABLE training_sessions (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies(id),
    course_id   uuid NOT NULL REFERENCES courses(id),
    project_id  uuid REFERENCES projects(id),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    place       text NOT NULL,
    trainer_id  uuid NOT NULL REFERENCES users(id),
    created_by  uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX training_sessions_company_id_idx ON training_sessions (company_id, starts_at);
CREATE INDEX training_sessions_course_id_idx ON training_sessions (course_id);
CREATE INDEX training_sessions_project_id_idx ON training_sessions (project_id);
CREATE INDEX training_sessions_trainer_id_idx ON training_sessions (trainer_id);
CREATE INDEX training_sessions_created_by_idx ON training_sessions (created_by);

-- 参训人员 and whether they came (NULL: not marked yet)
CREATE TABLE session_attendees (
    session_id  uuid NOT NULL REFERENCES training_sessions(id),
    user_id     uuid NOT NULL REFERENCES users(id),
    attended    boolean,
    marked_by   uuid REFERENCES users(id),
    marked_at   timestamptz,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_attendees_user_id_idx ON session_attendees (user_id);
CREATE INDEX session_attendees_marked_by_idx ON session_attendees (marked_by);

ALTER TABLE files DROP CONSTRAINT files_purpose_check;
ALTER TABLE files ADD CONSTRAINT files_purpose_check
    CHECK (purpose IN ('work_order', 'feedback', 'maintenance', 'staff', 'bill', 'receipt', 'training'));

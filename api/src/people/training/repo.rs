//! 考核 SQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::model::{Attempt, Draw, Exam, Practical, Question, QuestionKind};

pub async fn upsert_question(db: impl PgExecutor<'_>, q: &Question, by: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO exam_questions (id, company_id, topic, kind, stem, options, answer, explanation, archived,
                                     created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         ON CONFLICT (id) DO UPDATE SET topic = $3, kind = $4, stem = $5, options = $6, answer = $7,
             explanation = $8, archived = $9, updated_at = $11",
        q.id,
        q.company_id,
        q.topic,
        q.kind.as_str(),
        q.stem,
        &q.options,
        &q.answer,
        q.explanation,
        q.archived,
        by,
        q.updated_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn question(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Question>> {
    sqlx::query_as!(
        Question,
        r#"SELECT id, company_id, topic, kind AS "kind: QuestionKind", stem, options, answer, explanation, archived,
                  updated_at
           FROM exam_questions WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// Questions by id (an attempt's), whatever their company: the caller owns the attempt.
pub async fn questions_by_id(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<Question>> {
    sqlx::query_as!(
        Question,
        r#"SELECT id, company_id, topic, kind AS "kind: QuestionKind", stem, options, answer, explanation, archived,
                  updated_at
           FROM exam_questions WHERE id = ANY($1)"#,
        ids
    )
    .fetch_all(db)
    .await
}

/// The bank: a topic's (or every) question, in id order after a cursor.
pub async fn questions(
    db: impl PgExecutor<'_>,
    company: Uuid,
    topic: Option<&str>,
    archived: bool,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Question>> {
    sqlx::query_as!(
        Question,
        r#"SELECT id, company_id, topic, kind AS "kind: QuestionKind", stem, options, answer, explanation, archived,
                  updated_at
           FROM exam_questions
           WHERE company_id = $1 AND ($2::text IS NULL OR topic = $2) AND archived = $3 AND ($4::uuid IS NULL OR id > $4)
           ORDER BY id LIMIT $5"#,
        company,
        topic,
        archived,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

/// Whether a question was drawn into any attempt.
pub async fn question_drawn(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM exam_attempts WHERE questions @> ARRAY[$1::uuid]) AS "x!""#, id)
        .fetch_one(db)
        .await
}

/// Active questions per topic.
pub async fn topic_counts(db: impl PgExecutor<'_>, company: Uuid) -> sqlx::Result<HashMap<String, i64>> {
    let rows = sqlx::query!(
        r#"SELECT topic, count(*) AS "n!" FROM exam_questions WHERE company_id = $1 AND NOT archived GROUP BY topic"#,
        company
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.topic, r.n)).collect())
}

/// The ids of a topic's active questions.
pub async fn topic_ids(db: impl PgExecutor<'_>, company: Uuid, topic: &str) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM exam_questions WHERE company_id = $1 AND topic = $2 AND NOT archived ORDER BY id",
        company,
        topic
    )
    .fetch_all(db)
    .await
}

pub async fn insert_exam(db: &mut sqlx::PgConnection, e: &Exam, by: Uuid, candidates: &[Uuid]) -> sqlx::Result<()> {
    let draws = serde_json::to_value(&e.draws).unwrap_or_default();
    sqlx::query!(
        "INSERT INTO exams (id, company_id, project_id, title, draws, time_limit_minutes, attempts_allowed, pass_mark,
                            opens_at, closes_at, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        e.id,
        e.company_id,
        e.project_id,
        e.title,
        draws,
        e.time_limit_minutes,
        e.attempts_allowed,
        e.pass_mark,
        e.opens_at,
        e.closes_at,
        by,
        e.created_at
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!(
        "INSERT INTO exam_candidates (exam_id, user_id) SELECT $1, u FROM unnest($2::uuid[]) AS u ON CONFLICT DO NOTHING",
        e.id,
        candidates
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

struct ExamRow {
    id: Uuid,
    company_id: Uuid,
    project_id: Option<Uuid>,
    title: String,
    draws: serde_json::Value,
    time_limit_minutes: i32,
    attempts_allowed: i32,
    pass_mark: i32,
    opens_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl From<ExamRow> for Exam {
    fn from(r: ExamRow) -> Self {
        Exam {
            id: r.id,
            company_id: r.company_id,
            project_id: r.project_id,
            title: r.title,
            draws: serde_json::from_value::<Vec<Draw>>(r.draws).unwrap_or_default(),
            time_limit_minutes: r.time_limit_minutes,
            attempts_allowed: r.attempts_allowed,
            pass_mark: r.pass_mark,
            opens_at: r.opens_at,
            closes_at: r.closes_at,
            created_at: r.created_at,
        }
    }
}

pub async fn exam(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Exam>> {
    let r = sqlx::query_as!(
        ExamRow,
        "SELECT id, company_id, project_id, title, draws, time_limit_minutes, attempts_allowed, pass_mark, opens_at,
                closes_at, created_at
         FROM exams WHERE company_id = $1 AND id = $2",
        company,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(Into::into))
}

/// Exams of some projects (None: all; company-wide exams always), newest first.
pub async fn exams(
    db: impl PgExecutor<'_>,
    company: Uuid,
    projects: Option<&[Uuid]>,
    candidate: Option<Uuid>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Exam>> {
    let rows = sqlx::query_as!(
        ExamRow,
        "SELECT id, company_id, project_id, title, draws, time_limit_minutes, attempts_allowed, pass_mark, opens_at,
                closes_at, created_at
         FROM exams e
         WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id IS NULL OR project_id = ANY($2))
           AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM exam_candidates c WHERE c.exam_id = e.id AND c.user_id = $3))
           AND ($4::uuid IS NULL OR id < $4)
         ORDER BY id DESC LIMIT $5",
        company,
        projects,
        candidate,
        before,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn is_candidate(db: impl PgExecutor<'_>, exam: Uuid, user: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM exam_candidates WHERE exam_id = $1 AND user_id = $2) AS "x!""#,
        exam,
        user
    )
    .fetch_one(db)
    .await
}

pub async fn candidates(db: impl PgExecutor<'_>, exam: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT user_id FROM exam_candidates WHERE exam_id = $1 ORDER BY user_id", exam)
        .fetch_all(db)
        .await
}

struct AttemptRow {
    id: Uuid,
    exam_id: Uuid,
    company_id: Uuid,
    user_id: Uuid,
    number: i32,
    started_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
    questions: Vec<Uuid>,
    option_orders: serde_json::Value,
    answers: serde_json::Value,
    score: Option<Decimal>,
    passed: Option<bool>,
}

fn by_question(v: serde_json::Value) -> HashMap<Uuid, Vec<i16>> {
    serde_json::from_value(v).unwrap_or_default()
}

impl From<AttemptRow> for Attempt {
    fn from(r: AttemptRow) -> Self {
        Attempt {
            id: r.id,
            exam_id: r.exam_id,
            company_id: r.company_id,
            user_id: r.user_id,
            number: r.number,
            started_at: r.started_at,
            deadline: r.deadline,
            submitted_at: r.submitted_at,
            questions: r.questions,
            option_orders: by_question(r.option_orders),
            answers: by_question(r.answers),
            score: r.score,
            passed: r.passed,
        }
    }
}

pub async fn insert_attempt(db: impl PgExecutor<'_>, a: &Attempt) -> sqlx::Result<()> {
    let orders = serde_json::to_value(&a.option_orders).unwrap_or_default();
    sqlx::query!(
        "INSERT INTO exam_attempts (id, exam_id, company_id, user_id, number, started_at, deadline, questions,
                                    option_orders)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        a.id,
        a.exam_id,
        a.company_id,
        a.user_id,
        a.number,
        a.started_at,
        a.deadline,
        &a.questions,
        orders
    )
    .execute(db)
    .await?;
    Ok(())
}

/// One attempt, locked for the change the caller makes.
pub async fn attempt_for_update(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Attempt>> {
    let r = sqlx::query_as!(
        AttemptRow,
        "SELECT id, exam_id, company_id, user_id, number, started_at, deadline, submitted_at, questions, option_orders,
                answers, score, passed
         FROM exam_attempts WHERE company_id = $1 AND id = $2 FOR UPDATE",
        company,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(Into::into))
}

pub async fn attempt(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Attempt>> {
    let r = sqlx::query_as!(
        AttemptRow,
        "SELECT id, exam_id, company_id, user_id, number, started_at, deadline, submitted_at, questions, option_orders,
                answers, score, passed
         FROM exam_attempts WHERE company_id = $1 AND id = $2",
        company,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(Into::into))
}

/// An employee's attempts (at one exam), in order.
pub async fn attempts_of(db: impl PgExecutor<'_>, user: Uuid, exam: Option<Uuid>) -> sqlx::Result<Vec<Attempt>> {
    let rows = sqlx::query_as!(
        AttemptRow,
        "SELECT id, exam_id, company_id, user_id, number, started_at, deadline, submitted_at, questions, option_orders,
                answers, score, passed
         FROM exam_attempts WHERE user_id = $1 AND ($2::uuid IS NULL OR exam_id = $2) ORDER BY exam_id, number",
        user,
        exam
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Serialises an employee's starts of one exam (two phones, one attempt).
pub async fn lock_candidate(db: impl PgExecutor<'_>, exam: Uuid, user: Uuid) -> sqlx::Result<()> {
    sqlx::query!("SELECT 1 AS x FROM exam_candidates WHERE exam_id = $1 AND user_id = $2 FOR UPDATE", exam, user)
        .fetch_optional(db)
        .await?;
    Ok(())
}

pub async fn save_answers(db: impl PgExecutor<'_>, id: Uuid, answers: &HashMap<Uuid, Vec<i16>>) -> sqlx::Result<()> {
    let v = serde_json::to_value(answers).unwrap_or_default();
    sqlx::query!("UPDATE exam_attempts SET answers = $2 WHERE id = $1 AND submitted_at IS NULL", id, v)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn grade_attempt(
    db: impl PgExecutor<'_>,
    id: Uuid,
    at: DateTime<Utc>,
    score: Decimal,
    passed: bool,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE exam_attempts SET submitted_at = $2, score = $3, passed = $4 WHERE id = $1 AND submitted_at IS NULL",
        id,
        at,
        score,
        passed
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Attempts whose time ran out unsubmitted (the phone went away): the scheduler grades them.
pub async fn expired_attempts(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query!(
        "SELECT id, company_id FROM exam_attempts WHERE submitted_at IS NULL AND deadline < $1 ORDER BY deadline LIMIT $2",
        now,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.company_id)).collect())
}

pub async fn insert_practical(db: impl PgExecutor<'_>, p: &Practical) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO practical_scores (id, company_id, project_id, user_id, title, score, passed, note, scored_by, scored_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        p.id,
        p.company_id,
        p.project_id,
        p.user_id,
        p.title,
        p.score,
        p.passed,
        p.note,
        p.scored_by,
        p.scored_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn practicals_of(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<Vec<Practical>> {
    sqlx::query_as!(
        Practical,
        "SELECT id, company_id, project_id, user_id, title, score, passed, note, scored_by, scored_at
         FROM practical_scores WHERE user_id = $1 ORDER BY scored_at DESC",
        user
    )
    .fetch_all(db)
    .await
}

/// The titles of some exams.
pub async fn exam_titles(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<HashMap<Uuid, String>> {
    let rows = sqlx::query!("SELECT id, title FROM exams WHERE id = ANY($1)", ids).fetch_all(db).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.title)).collect())
}

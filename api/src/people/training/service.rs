//! 考核 rules. The bank and exams are managed with `training:write`; employees sit the exams
//! they are candidates of (`self:training`). The server owns the clock: an attempt's
//! deadline is set when it starts, answers after it are refused, and an attempt left
//! unsubmitted is graded at its deadline. The right answers are never part of what an
//! attempt shows before the exam closes: before then a submitted attempt shows its score.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use rand::seq::SliceRandom;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{Attempt, Draw, Exam, Practical, Question, QuestionKind, grade, is_right};
use super::repo;
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::notify::model::{Category, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm, ProjectFilter};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// A staff account of the caller's company.
async fn own_staff(state: &AppState, actor: &Actor, user: Uuid) -> AppResult<()> {
    if crate::people::staff::service::is_staff(state, actor.company_id, user).await? {
        Ok(())
    } else {
        Err(AppError::not_found("user"))
    }
}

// ---- the bank ------------------------------------------------------------------------------

pub struct QuestionInput {
    pub id: Option<Uuid>,
    pub topic: String,
    pub kind: QuestionKind,
    pub stem: String,
    pub options: Vec<String>,
    pub answer: Vec<i32>,
    pub explanation: String,
    pub archived: bool,
}

/// 题库 (`training:write` over the company: whoever reads the bank reads the answers): a
/// question of a topic; true/false questions have the options
/// 正确 and 错误 unless others are given.
pub async fn save_question(state: &AppState, actor: &Actor, retry: &Retry, i: QuestionInput) -> AppResult<Uuid> {
    actor.require_over(Perm::TrainingWrite, None)?;
    let before = match i.id {
        Some(id) => {
            Some(repo::question(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("question"))?)
        }
        None => None,
    };
    let topic = types::text("topic", &i.topic, 30)?;
    let stem = types::text("stem", &i.stem, 500)?;
    let options: Vec<String> = if i.kind == QuestionKind::TrueFalse && i.options.is_empty() {
        vec!["正确".into(), "错误".into()]
    } else {
        i.options.iter().map(|o| types::text("options", o, 200)).collect::<AppResult<_>>()?
    };
    let n = options.len();
    let ok_count = match i.kind {
        QuestionKind::TrueFalse => n == 2,
        _ => (2..=8).contains(&n),
    };
    if !ok_count {
        return Err(invalid("options", "选择题2到8个选项，判断题2个", "2 to 8 options; a true/false question has 2"));
    }
    let mut answer: Vec<i16> = Vec::new();
    for a in &i.answer {
        match usize::try_from(*a) {
            Ok(x) if x < n => answer.push(x as i16),
            _ => {
                return Err(invalid(
                    "answer",
                    "答案应为选项的序号（从0开始）",
                    "An answer is an option's index, from 0",
                ));
            }
        }
    }
    answer.sort_unstable();
    answer.dedup();
    let ok_answer = match i.kind {
        QuestionKind::Single | QuestionKind::TrueFalse => answer.len() == 1,
        QuestionKind::Multiple => !answer.is_empty(),
    };
    if !ok_answer || answer.len() != i.answer.len() {
        return Err(invalid(
            "answer",
            "单选和判断题一个答案，多选题至少一个",
            "One answer for single and true/false, one or more for multiple",
        ));
    }
    let explanation =
        if i.explanation.trim().is_empty() { String::new() } else { types::text("explanation", &i.explanation, 500)? };
    // a question already drawn keeps its options and answer (attempts show and grade them):
    // change it by archiving it and adding another
    if let Some(b) = &before
        && (b.kind != i.kind || b.options != options || b.answer != answer)
        && repo::question_drawn(&state.db, b.id).await?
    {
        return Err(AppError::conflict(
            "answer",
            Msg::new(
                "该题已被抽入答卷，不能修改选项和答案，请停用后另建",
                "The question was drawn into attempts: archive it and add a new one",
            ),
        ));
    }
    let now = state.clock.now();
    let q = Question {
        id: i.id.unwrap_or_else(Uuid::now_v7),
        company_id: actor.company_id,
        topic,
        kind: i.kind,
        stem,
        options,
        answer,
        explanation,
        archived: i.archived,
        updated_at: now,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::upsert_question(&mut *tx, &q, actor.user_id).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "question.save",
        "exam_question",
        Some(q.id),
        serde_json::json!({
            "topic": q.topic, "kind": q.kind, "archived": q.archived,
        }),
    )
    .await?;
    tx.commit(&q.id).await?;
    Ok(q.id)
}

/// The bank with its answers (`training:write` over the company).
pub async fn questions(
    state: &AppState,
    actor: &Actor,
    topic: Option<&str>,
    archived: bool,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Question>> {
    actor.require_over(Perm::TrainingWrite, None)?;
    let topic = topic.map(str::trim).filter(|t| !t.is_empty());
    Ok(repo::questions(&state.db, actor.company_id, topic, archived, after, limit as i64).await?)
}

pub async fn question(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Question> {
    actor.require_over(Perm::TrainingWrite, None)?;
    repo::question(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("question"))
}

/// Topics with their active questions, no answers (`training:write` anywhere: a project's
/// manager sets exams from them).
pub async fn topics(state: &AppState, actor: &Actor) -> AppResult<Vec<(String, i64)>> {
    actor.require(Perm::TrainingWrite)?;
    let mut v: Vec<(String, i64)> = repo::topic_counts(&state.db, actor.company_id).await?.into_iter().collect();
    v.sort();
    Ok(v)
}

// ---- exams ---------------------------------------------------------------------------------

pub struct ExamInput {
    pub project_id: Option<Uuid>,
    pub title: String,
    pub draws: Vec<Draw>,
    pub time_limit_minutes: i32,
    pub attempts_allowed: i32,
    pub pass_mark: i32,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub candidates: Vec<Uuid>,
}

/// 组卷 (`training:write` over the project, or the company for a company-wide exam): each
/// topic must hold the questions drawn from it; the candidates are told.
pub async fn create_exam(state: &AppState, actor: &Actor, retry: &Retry, i: ExamInput) -> AppResult<Uuid> {
    if let Some(p) = i.project_id {
        crate::org::company::service::project_of_company(state, actor.company_id, p).await?;
    }
    actor.require_over(Perm::TrainingWrite, i.project_id)?;
    let mut candidates = i.candidates.clone();
    candidates.sort();
    candidates.dedup();
    if candidates.is_empty() || candidates.len() > 1000 {
        return Err(invalid("candidateIds", "考生应为1到1000人", "1 to 1,000 candidates"));
    }
    if candidates.contains(&actor.user_id) {
        return Err(invalid("candidateIds", "出题人不能参加本场考试", "Whoever sets an exam does not sit it"));
    }
    for u in &candidates {
        own_staff(state, actor, *u).await?;
        let them = crate::rbac::service::load_actor(state, *u, actor.company_id, i64::MAX).await?;
        if matches!(them.projects(Perm::TrainingWrite), Ok(ProjectFilter::All)) {
            return Err(AppError::Validation {
                field: "candidateIds".into(),
                msg: Msg::new("能查看题库答案的人员不能参加考试", "Those who read the bank's answers do not sit exams"),
                details: Some(serde_json::json!({ "userId": u })),
            });
        }
        if let Some(p) = i.project_id
            && crate::people::staff::service::projects_of(state, *u).await?.is_some_and(|ps| !ps.contains(&p))
        {
            return Err(invalid("candidateIds", "考生不在该项目工作", "A candidate does not work in the project"));
        }
    }
    let title = types::text("title", &i.title, 50)?;
    if i.draws.is_empty() || i.draws.len() > 20 {
        return Err(invalid("draws", "按1到20个题目类别抽题", "Draw from 1 to 20 topics"));
    }
    let bank = repo::topic_counts(&state.db, actor.company_id).await?;
    let mut draws: Vec<Draw> = Vec::new();
    for d in &i.draws {
        let topic = types::text("draws", &d.topic, 30)?;
        if !(1..=100).contains(&d.count) || draws.iter().any(|x| x.topic == topic) {
            return Err(invalid(
                "draws",
                "每类抽1到100题，类别不重复",
                "1 to 100 questions per topic, each topic once",
            ));
        }
        let have = bank.get(&topic).copied().unwrap_or(0);
        if have < d.count as i64 {
            return Err(AppError::Validation {
                field: "draws".into(),
                msg: Msg::owned(
                    format!("题库中“{topic}”只有{have}道题"),
                    format!("The bank holds {have} questions of “{topic}”"),
                ),
                details: Some(serde_json::json!({ "topic": topic, "available": have })),
            });
        }
        draws.push(Draw { topic, count: d.count });
    }
    if !(1..=600).contains(&i.time_limit_minutes) {
        return Err(invalid("timeLimitMinutes", "限时1到600分钟", "1 to 600 minutes"));
    }
    if !(1..=10).contains(&i.attempts_allowed) {
        return Err(invalid("attemptsAllowed", "考试次数1到10次", "1 to 10 attempts"));
    }
    if !(0..=100).contains(&i.pass_mark) {
        return Err(invalid("passMark", "及格线0到100分", "A pass mark of 0 to 100"));
    }
    types::sane_time("opensAt", i.opens_at)?;
    types::sane_time("closesAt", i.closes_at)?;
    let now = state.clock.now();
    if i.closes_at <= i.opens_at || i.closes_at <= now {
        return Err(invalid("closesAt", "截止时间应晚于开考时间和现在", "It closes after it opens, and in the future"));
    }
    let e = Exam {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: i.project_id,
        title,
        draws,
        time_limit_minutes: i.time_limit_minutes,
        attempts_allowed: i.attempts_allowed,
        pass_mark: i.pass_mark,
        opens_at: i.opens_at,
        closes_at: i.closes_at,
        created_at: now,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert_exam(&mut tx, &e, actor.user_id, &candidates).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "exam.create",
        "exam",
        Some(e.id),
        serde_json::json!({
            "title": e.title, "draws": e.draws, "candidates": candidates.len(),
        }),
    )
    .await?;
    let opens = e.opens_at.with_timezone(&crate::kit::clock::BUSINESS_TZ).format("%m月%d日 %H:%M");
    let n = NewNotification {
        category: Category::Training,
        priority: Priority::Normal,
        title: format!("考试通知：{}", e.title),
        body: format!("{opens}起可以参加考试，限时{}分钟，共{}次机会", e.time_limit_minutes, e.attempts_allowed),
        data: serde_json::json!({ "route": "exam", "id": e.id }),
        channels: None,
    };
    crate::notify::service::enqueue(state, &mut tx, actor.company_id, &candidates, &n).await?;
    tx.commit(&e.id).await?;
    Ok(e.id)
}

/// One exam: a candidate's, or within `training:read`/`write` of its project.
pub async fn exam(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Exam> {
    let e = repo::exam(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("exam"))?;
    if repo::is_candidate(&state.db, e.id, actor.user_id).await? {
        return Ok(e);
    }
    // a company-wide exam is listed to every reader, so every reader may open it
    let reaches = |perm| match (e.project_id, actor.projects(perm)) {
        (_, Ok(ProjectFilter::All)) | (None, Ok(_)) => true,
        (Some(p), Ok(f)) => f.allows(p),
        _ => false,
    };
    if reaches(Perm::TrainingRead) || reaches(Perm::TrainingWrite) { Ok(e) } else { Err(AppError::not_found("exam")) }
}

/// Exams, newest first: one's own (`mine`, `self:training`), or of the caller's
/// `training:read` projects (company-wide ones included).
pub async fn exams(
    state: &AppState,
    actor: &Actor,
    mine: bool,
    before: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Exam>> {
    if mine {
        actor.require(Perm::SelfTraining)?;
        return Ok(repo::exams(&state.db, actor.company_id, None, Some(actor.user_id), before, limit as i64).await?);
    }
    let only = actor.projects(Perm::TrainingRead)?.as_sql();
    Ok(repo::exams(&state.db, actor.company_id, only.as_deref(), None, before, limit as i64).await?)
}

pub async fn candidates(state: &AppState, exam_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(repo::candidates(&state.db, exam_id).await?)
}

// ---- attempts ------------------------------------------------------------------------------

/// Grades an attempt at `at` in the caller's transaction (once).
async fn grade_in(
    tx: &mut sqlx::PgConnection,
    a: &Attempt,
    pass_mark: i32,
    at: DateTime<Utc>,
) -> AppResult<(Decimal, bool)> {
    let qs = repo::questions_by_id(&mut *tx, &a.questions).await?;
    let right = qs.iter().filter(|q| a.answers.get(&q.id).is_some_and(|c| is_right(&q.answer, c))).count();
    let score = grade(right, a.questions.len());
    let passed = score >= Decimal::from(pass_mark);
    repo::grade_attempt(&mut *tx, a.id, at, score, passed).await?;
    Ok((score, passed))
}

/// `count` questions at random from each pool, all of them in a random order (the
/// thread's CSPRNG).
fn draw(pools: Vec<(Vec<Uuid>, usize)>) -> Vec<Uuid> {
    let mut rng = rand::rng();
    let mut out = Vec::new();
    for (mut ids, count) in pools {
        ids.shuffle(&mut rng);
        ids.truncate(count);
        out.extend(ids);
    }
    out.shuffle(&mut rng);
    out
}

/// Each question's options in a random order (true/false keeps 正确 before 错误).
fn shuffled_options(bank: &[Question]) -> HashMap<Uuid, Vec<i16>> {
    let mut rng = rand::rng();
    bank.iter()
        .map(|q| {
            let mut order: Vec<i16> = (0..q.options.len() as i16).collect();
            if q.kind != QuestionKind::TrueFalse {
                order.shuffle(&mut rng);
            }
            (q.id, order)
        })
        .collect()
}

fn time_up() -> AppError {
    AppError::Forbidden { reason: "TIME_UP", msg: Msg::new("答题时间已到", "Time is up") }
}

/// 开始考试 (`self:training`, a candidate, while the exam is open): a new attempt with
/// questions drawn at random per topic, in a random order, options shuffled; an attempt
/// still running is resumed instead. Returns the attempt's id.
pub async fn start(state: &AppState, actor: &Actor, retry: &Retry, exam_id: Uuid) -> AppResult<Uuid> {
    actor.require(Perm::SelfTraining)?;
    let e = repo::exam(&state.db, actor.company_id, exam_id).await?.ok_or(AppError::not_found("exam"))?;
    if !repo::is_candidate(&state.db, e.id, actor.user_id).await? {
        return Err(AppError::not_found("exam"));
    }
    let now = state.clock.now();
    if now < e.opens_at {
        return Err(AppError::wrong_state("examId", "not_open", Msg::new("考试尚未开始", "The exam has not opened")));
    }
    if now >= e.closes_at {
        return Err(AppError::wrong_state("examId", "closed", Msg::new("考试已结束", "The exam has closed")));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::lock_candidate(&mut *tx, e.id, actor.user_id).await?;
    let past = repo::attempts_of(&mut *tx, actor.user_id, Some(e.id)).await?;
    for a in past.iter().filter(|a| a.submitted_at.is_none()) {
        if a.deadline > now {
            let id = a.id;
            tx.commit(&id).await?;
            return Ok(id);
        }
        grade_in(&mut tx, a, e.pass_mark, a.deadline).await?;
    }
    if past.len() as i32 >= e.attempts_allowed {
        return Err(AppError::Forbidden {
            reason: "NO_ATTEMPTS_LEFT",
            msg: Msg::new("考试次数已用完", "No attempts are left"),
        });
    }
    let mut pools = Vec::new();
    for d in &e.draws {
        pools.push((repo::topic_ids(&mut *tx, actor.company_id, &d.topic).await?, d.count.max(0) as usize));
    }
    let questions = draw(pools);
    if questions.is_empty() {
        return Err(invalid("examId", "题库中没有可用的试题", "The bank holds no questions for this exam"));
    }
    let bank = repo::questions_by_id(&mut *tx, &questions).await?;
    let option_orders = shuffled_options(&bank);
    let a = Attempt {
        id: Uuid::now_v7(),
        exam_id: e.id,
        company_id: actor.company_id,
        user_id: actor.user_id,
        number: past.len() as i32 + 1,
        started_at: now,
        deadline: (now + TimeDelta::minutes(e.time_limit_minutes as i64)).min(e.closes_at),
        submitted_at: None,
        questions,
        option_orders,
        answers: HashMap::new(),
        score: None,
        passed: None,
    };
    repo::insert_attempt(&mut *tx, &a).await?;
    tx.commit(&a.id).await?;
    Ok(a.id)
}

/// The caller's own attempt, locked (another's is not found).
async fn own_attempt(tx: &mut sqlx::PgConnection, actor: &Actor, id: Uuid) -> AppResult<Attempt> {
    let a = repo::attempt_for_update(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("attempt"))?;
    if a.user_id != actor.user_id {
        return Err(AppError::not_found("attempt"));
    }
    Ok(a)
}

/// 答题: the options chosen, by their place as shown (from 0); again for a question replaces
/// the answer. Refused once the attempt is submitted or its time is up.
pub async fn answer(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    attempt_id: Uuid,
    question_id: Uuid,
    choices: &[i32],
) -> AppResult<Uuid> {
    actor.require(Perm::SelfTraining)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut a = own_attempt(&mut tx, actor, attempt_id).await?;
    if a.submitted_at.is_some() {
        return Err(AppError::wrong_state(
            "attemptId",
            "submitted",
            Msg::new("答卷已提交", "The attempt was submitted"),
        ));
    }
    if state.clock.now() >= a.deadline {
        return Err(time_up());
    }
    let Some(order) = a.option_orders.get(&question_id).cloned() else {
        return Err(AppError::not_found("question"));
    };
    let q = repo::questions_by_id(&mut *tx, &[question_id])
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::not_found("question"))?;
    let mut chosen = Vec::new();
    for c in choices {
        match usize::try_from(*c).ok().and_then(|i| order.get(i)) {
            Some(orig) if !chosen.contains(orig) => chosen.push(*orig),
            _ => return Err(invalid("choices", "所选选项无效", "Not an option of the question")),
        }
    }
    let ok = match q.kind {
        QuestionKind::Single | QuestionKind::TrueFalse => chosen.len() == 1,
        QuestionKind::Multiple => !chosen.is_empty(),
    };
    if !ok {
        return Err(invalid(
            "choices",
            "单选和判断题选一项，多选题至少选一项",
            "Choose one option (several for a multiple-choice question)",
        ));
    }
    chosen.sort_unstable();
    a.answers.insert(question_id, chosen);
    repo::save_answers(&mut *tx, a.id, &a.answers).await?;
    tx.commit(&a.id).await?;
    Ok(a.id)
}

/// 交卷: graded at once (a second submit answers with the same attempt).
pub async fn submit(state: &AppState, actor: &Actor, retry: &Retry, attempt_id: Uuid) -> AppResult<Uuid> {
    actor.require(Perm::SelfTraining)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let a = own_attempt(&mut tx, actor, attempt_id).await?;
    if a.submitted_at.is_none() {
        let e = repo::exam(&mut *tx, actor.company_id, a.exam_id).await?.ok_or(AppError::not_found("exam"))?;
        let now = state.clock.now();
        let (score, passed) = grade_in(&mut tx, &a, e.pass_mark, now.min(a.deadline)).await?;
        audit::record(
            &mut tx,
            now,
            actor,
            "exam.submit",
            "exam_attempt",
            Some(a.id),
            serde_json::json!({
                "examId": e.id, "number": a.number, "score": score, "passed": passed,
            }),
        )
        .await?;
    }
    tx.commit(&a.id).await?;
    Ok(a.id)
}

/// The scheduler's job: grades attempts whose time ran out unsubmitted. Returns how many.
pub async fn grade_expired(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    let mut n = 0;
    for (id, company) in repo::expired_attempts(&state.db, now, 200).await? {
        // one attempt that fails to grade does not hold up the others
        match grade_one(state, company, id).await {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(e) => {
                e.log_if_internal();
                tracing::warn!(attempt = %id, error = %e, "an expired exam attempt was not graded");
            }
        }
    }
    Ok(n)
}

async fn grade_one(state: &AppState, company: Uuid, id: Uuid) -> AppResult<bool> {
    let mut tx = state.db.begin().await?;
    let mut graded = false;
    if let Some(a) = repo::attempt_for_update(&mut *tx, company, id).await?
        && a.submitted_at.is_none()
        && let Some(e) = repo::exam(&mut *tx, company, a.exam_id).await?
    {
        let (score, passed) = grade_in(&mut tx, &a, e.pass_mark, a.deadline).await?;
        audit::record(&mut tx, state.clock.now(), &audit::System(company), "exam.expire", "exam_attempt", Some(a.id),
            serde_json::json!({ "examId": e.id, "userId": a.user_id, "number": a.number, "score": score, "passed": passed }))
        .await?;
        graded = true;
    }
    tx.commit().await?;
    Ok(graded)
}

/// An attempt as its owner (or a reader of results) may see it.
pub struct AttemptView {
    pub attempt: Attempt,
    pub exam: Exam,
    /// the questions as shown, options in the order shown
    pub questions: Vec<ShownQuestion>,
    /// the exam has closed and the attempt is graded: the right answers may be shown
    pub reviewable: bool,
}

pub struct ShownQuestion {
    pub id: Uuid,
    pub kind: QuestionKind,
    pub stem: String,
    pub options: Vec<String>,
    /// the places (as shown) chosen
    pub chosen: Vec<i32>,
    /// the places (as shown) of the right options, for a review only
    pub right: Vec<i32>,
    pub explanation: String,
}

/// One attempt: one's own, or within `training:read` of its exam's project.
pub async fn attempt(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<AttemptView> {
    let a = repo::attempt(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("attempt"))?;
    let e = repo::exam(&state.db, actor.company_id, a.exam_id).await?.ok_or(AppError::not_found("attempt"))?;
    let reader = match (e.project_id, actor.projects(Perm::TrainingRead)) {
        (_, Ok(ProjectFilter::All)) => true,
        (Some(p), Ok(f)) => f.allows(p),
        _ => false,
    };
    if a.user_id != actor.user_id && !reader {
        return Err(AppError::not_found("attempt"));
    }
    let bank: HashMap<Uuid, Question> =
        repo::questions_by_id(&state.db, &a.questions).await?.into_iter().map(|q| (q.id, q)).collect();
    let closed = state.clock.now() >= e.closes_at;
    let reviewable = a.submitted_at.is_some() && closed;
    // while the exam is open a reader sees another's score, never their answers (a reader
    // may sit the same exam)
    let shown: &[Uuid] = if a.user_id == actor.user_id || closed { &a.questions } else { &[] };
    let mut questions = Vec::new();
    for qid in shown {
        let Some(q) = bank.get(qid) else { continue };
        let order = a.option_orders.get(qid).cloned().unwrap_or_default();
        let place = |orig: &i16| order.iter().position(|o| o == orig).map(|p| p as i32);
        let chosen = a.answers.get(qid).map(|c| c.iter().filter_map(place).collect()).unwrap_or_default();
        let right = if reviewable { q.answer.iter().filter_map(place).collect() } else { Vec::new() };
        questions.push(ShownQuestion {
            id: q.id,
            kind: q.kind,
            stem: q.stem.clone(),
            options: order.iter().filter_map(|o| q.options.get(*o as usize).cloned()).collect(),
            chosen,
            right,
            explanation: if reviewable { q.explanation.clone() } else { String::new() },
        });
    }
    Ok(AttemptView { attempt: a, exam: e, questions, reviewable })
}

/// One's attempts at an exam (`self:training`).
pub async fn my_attempts(state: &AppState, actor: &Actor, exam_id: Uuid) -> AppResult<Vec<Attempt>> {
    actor.require(Perm::SelfTraining)?;
    let e = repo::exam(&state.db, actor.company_id, exam_id).await?.ok_or(AppError::not_found("exam"))?;
    if !repo::is_candidate(&state.db, e.id, actor.user_id).await? {
        return Err(AppError::not_found("exam"));
    }
    Ok(repo::attempts_of(&state.db, actor.user_id, Some(exam_id)).await?)
}

// ---- practical assessments and transcripts -------------------------------------------------

pub struct PracticalInput {
    pub user_id: Uuid,
    pub project_id: Option<Uuid>,
    pub title: String,
    pub score: Decimal,
    pub passed: bool,
    pub note: String,
}

/// 实操考核 (`training:write` over the project, or the company): a trainer's score; the
/// employee is told.
pub async fn score_practical(state: &AppState, actor: &Actor, retry: &Retry, i: PracticalInput) -> AppResult<Uuid> {
    // the permission first (another company's project is not found): nothing about the
    // employee is told to one without it
    actor.require_over(Perm::TrainingWrite, i.project_id)?;
    own_staff(state, actor, i.user_id).await?;
    if let Some(p) = i.project_id
        && crate::people::staff::service::projects_of(state, i.user_id).await?.is_some_and(|ps| !ps.contains(&p))
    {
        return Err(invalid("userId", "该员工不在此项目工作", "The employee does not work in this project"));
    }
    let title = types::text("title", &i.title, 50)?;
    if i.score.is_sign_negative() || i.score > Decimal::from(100) || i.score.scale() > 2 {
        return Err(invalid(
            "score",
            "分数应在0到100之间，最多两位小数",
            "A score of 0 to 100 with at most 2 decimals",
        ));
    }
    let note = if i.note.trim().is_empty() { String::new() } else { types::text("note", &i.note, 500)? };
    let now = state.clock.now();
    let p = Practical {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: i.project_id,
        user_id: i.user_id,
        title,
        score: i.score,
        passed: i.passed,
        note,
        scored_by: actor.user_id,
        scored_at: now,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert_practical(&mut *tx, &p).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "practical.score",
        "practical_score",
        Some(p.id),
        serde_json::json!({
            "userId": p.user_id, "title": p.title, "score": p.score, "passed": p.passed,
        }),
    )
    .await?;
    let n = NewNotification {
        category: Category::Training,
        priority: Priority::Normal,
        title: format!("实操考核成绩：{}", p.title),
        body: format!("得分{}，{}", p.score, if p.passed { "合格" } else { "不合格" }),
        data: serde_json::json!({ "route": "transcript" }),
        channels: None,
    };
    crate::notify::service::enqueue(state, &mut tx, actor.company_id, &[p.user_id], &n).await?;
    tx.commit(&p.id).await?;
    Ok(p.id)
}

/// 成绩档案: exams, practical assessments and certificates of one employee.
pub struct Transcript {
    pub user_id: Uuid,
    /// training sessions, newest first: the session, its course's title, whether they came
    pub sessions: Vec<(crate::people::courses::model::Session, String, Option<bool>)>,
    pub attempts: Vec<(Attempt, String)>,
    pub practicals: Vec<Practical>,
    pub certificates: Vec<crate::people::staff::model::Certificate>,
}

/// One's own (`self:training`), or an employee's within `training:read` (their projects
/// and the reader's meet; company-wide readers see everyone).
pub async fn transcript(state: &AppState, actor: &Actor, user: Uuid) -> AppResult<Transcript> {
    own_staff(state, actor, user).await?;
    let own = user == actor.user_id && actor.has(Perm::SelfTraining);
    if !own {
        let ok = match actor.projects(Perm::TrainingRead) {
            Ok(ProjectFilter::All) => true,
            Ok(ProjectFilter::Only(mine)) => match crate::people::staff::service::projects_of(state, user).await? {
                None => false,
                Some(theirs) => theirs.iter().any(|p| mine.contains(p)),
            },
            Err(_) => false,
        };
        if !ok {
            return Err(AppError::not_found("user"));
        }
    }
    let attempts: Vec<Attempt> =
        repo::attempts_of(&state.db, user, None).await?.into_iter().filter(|a| a.submitted_at.is_some()).collect();
    let mut exam_ids: Vec<Uuid> = attempts.iter().map(|a| a.exam_id).collect();
    exam_ids.sort();
    exam_ids.dedup();
    let titles = repo::exam_titles(&state.db, &exam_ids).await?;
    let attempts = attempts
        .into_iter()
        .map(|a| {
            let t = titles.get(&a.exam_id).cloned().unwrap_or_default();
            (a, t)
        })
        .collect();
    Ok(Transcript {
        user_id: user,
        sessions: crate::people::courses::service::attended_by(state, user).await?,
        attempts,
        practicals: repo::practicals_of(&state.db, user).await?,
        certificates: crate::people::staff::service::certificates_of(state, &[user]).await?,
    })
}

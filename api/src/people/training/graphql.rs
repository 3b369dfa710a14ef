//! 考核 over GraphQL: the bank and exams for managers, attempts for the staff app,
//! practical scores and transcripts.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model;
use super::service::{self, ExamInput, PracticalInput, QuestionInput};
use crate::kit::gql::{Conn, StateExt, parse_id, parse_ids, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::people::staff::graphql::CertificateKind;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 题型
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::QuestionKind")]
pub enum QuestionKind {
    /// 单选
    Single,
    /// 多选: every right option and no other
    Multiple,
    /// 判断
    TrueFalse,
}

/// 试题 with its answer (the bank's managers only).
#[derive(SimpleObject)]
pub struct ExamQuestion {
    /// the question's id
    pub id: ID,
    /// 题目类别
    pub topic: String,
    /// single, multiple or true/false
    pub kind: QuestionKind,
    /// 题干
    pub stem: String,
    /// 选项
    pub options: Vec<String>,
    /// the indexes of the right options (from 0)
    pub answer: Vec<i32>,
    /// 解析, shown in a review
    pub explanation: String,
    /// no longer drawn
    pub archived: bool,
}

impl From<model::Question> for ExamQuestion {
    fn from(q: model::Question) -> Self {
        ExamQuestion {
            id: to_id(q.id),
            topic: q.topic,
            kind: q.kind.into(),
            stem: q.stem,
            options: q.options,
            answer: q.answer.into_iter().map(i32::from).collect(),
            explanation: q.explanation,
            archived: q.archived,
        }
    }
}

/// A topic of the bank.
#[derive(SimpleObject)]
pub struct ExamTopic {
    /// 类别
    pub topic: String,
    /// active questions
    pub questions: i64,
}

/// How many questions of a topic an exam draws.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "ExamDrawInput")]
pub struct ExamDraw {
    /// 类别 (of the bank)
    pub topic: String,
    /// questions drawn from it (1-100)
    pub count: i32,
}

/// 考试
#[derive(SimpleObject)]
pub struct Exam {
    /// the exam's id
    pub id: ID,
    /// its project (none: company-wide)
    pub project_id: Option<ID>,
    /// 名称
    pub title: String,
    /// what is drawn from the bank
    pub draws: Vec<ExamDraw>,
    /// questions in each attempt
    pub question_count: i32,
    /// 限时
    pub time_limit_minutes: i32,
    /// 考试次数
    pub attempts_allowed: i32,
    /// 及格线 out of 100
    pub pass_mark: i32,
    /// attempts may start from
    pub opens_at: DateTime<Utc>,
    /// until (the right answers are shown in reviews after it)
    pub closes_at: DateTime<Utc>,
}

impl From<model::Exam> for Exam {
    fn from(e: model::Exam) -> Self {
        Exam {
            id: to_id(e.id),
            project_id: e.project_id.map(to_id),
            title: e.title,
            question_count: e.draws.iter().map(|d| d.count).sum(),
            draws: e.draws.into_iter().map(|d| ExamDraw { topic: d.topic, count: d.count }).collect(),
            time_limit_minutes: e.time_limit_minutes,
            attempts_allowed: e.attempts_allowed,
            pass_mark: e.pass_mark,
            opens_at: e.opens_at,
            closes_at: e.closes_at,
        }
    }
}

/// A question as an attempt shows it: no answer.
#[derive(SimpleObject)]
pub struct AttemptQuestion {
    /// the question's id
    pub id: ID,
    /// single, multiple or true/false
    pub kind: QuestionKind,
    /// 题干
    pub stem: String,
    /// 选项, in the order this attempt shows them
    pub options: Vec<String>,
    /// the places (from 0, as shown) chosen so far
    pub chosen: Vec<i32>,
}

/// A question reviewed after the exam closed.
#[derive(SimpleObject)]
pub struct QuestionReview {
    /// the question
    pub question_id: ID,
    /// the places (as shown) of the right options
    pub right: Vec<i32>,
    /// whether the answer given was right
    pub correct: bool,
    /// 解析
    pub explanation: String,
}

/// 答卷
#[derive(SimpleObject)]
pub struct ExamAttempt {
    /// the attempt's id
    pub id: ID,
    /// the exam
    pub exam_id: ID,
    /// the exam's name
    pub exam_title: String,
    /// whose
    pub user_id: ID,
    /// 第几次
    pub number: i32,
    /// 开始
    pub started_at: DateTime<Utc>,
    /// answers after this are refused (the server's clock)
    pub deadline: DateTime<Utc>,
    /// seconds until the deadline (0 when past or submitted)
    pub seconds_left: i64,
    /// 交卷时间
    pub submitted_at: Option<DateTime<Utc>>,
    /// 得分 out of 100, once submitted
    pub score: Option<Decimal>,
    /// 是否及格, once submitted
    pub passed: Option<bool>,
    /// the questions in the order shown
    pub questions: Vec<AttemptQuestion>,
    /// the right answers: only once the exam has closed
    pub review: Option<Vec<QuestionReview>>,
}

impl ExamAttempt {
    fn new(v: service::AttemptView, now: DateTime<Utc>) -> Self {
        let a = v.attempt;
        let seconds_left = if a.submitted_at.is_some() { 0 } else { (a.deadline - now).num_seconds().max(0) };
        let review = v.reviewable.then(|| {
            v.questions
                .iter()
                .map(|q| {
                    let mut c = q.chosen.clone();
                    c.sort_unstable();
                    let mut r = q.right.clone();
                    r.sort_unstable();
                    QuestionReview {
                        question_id: to_id(q.id),
                        correct: !c.is_empty() && c == r,
                        right: q.right.clone(),
                        explanation: q.explanation.clone(),
                    }
                })
                .collect()
        });
        ExamAttempt {
            id: to_id(a.id),
            exam_id: to_id(a.exam_id),
            exam_title: v.exam.title,
            user_id: to_id(a.user_id),
            number: a.number,
            started_at: a.started_at,
            deadline: a.deadline,
            seconds_left,
            submitted_at: a.submitted_at,
            score: a.score,
            passed: a.passed,
            questions: v
                .questions
                .into_iter()
                .map(|q| AttemptQuestion {
                    id: to_id(q.id),
                    kind: q.kind.into(),
                    stem: q.stem,
                    options: q.options,
                    chosen: q.chosen,
                })
                .collect(),
            review,
        }
    }
}

/// 实操考核成绩
#[derive(SimpleObject)]
pub struct PracticalScore {
    /// the score's id
    pub id: ID,
    /// whose
    pub user_id: ID,
    /// 考核项目
    pub title: String,
    /// 得分 out of 100
    pub score: Decimal,
    /// 合格
    pub passed: bool,
    /// 评语
    pub note: String,
    /// the trainer
    pub scored_by: ID,
    /// when
    pub scored_at: DateTime<Utc>,
}

impl From<model::Practical> for PracticalScore {
    fn from(p: model::Practical) -> Self {
        PracticalScore {
            id: to_id(p.id),
            user_id: to_id(p.user_id),
            title: p.title,
            score: p.score,
            passed: p.passed,
            note: p.note,
            scored_by: to_id(p.scored_by),
            scored_at: p.scored_at,
        }
    }
}

/// A graded attempt in a transcript.
#[derive(SimpleObject)]
pub struct TranscriptExam {
    /// the exam
    pub exam_id: ID,
    /// its name
    pub title: String,
    /// 第几次
    pub number: i32,
    /// 得分
    pub score: Option<Decimal>,
    /// 及格
    pub passed: Option<bool>,
    /// 交卷时间
    pub submitted_at: Option<DateTime<Utc>>,
}

/// A certificate in a transcript.
#[derive(SimpleObject)]
pub struct TranscriptCertificate {
    /// 类别
    pub kind: CertificateKind,
    /// 证书编号
    pub number: String,
    /// 发证日期
    pub issued_on: NaiveDate,
    /// 有效期至
    pub expires_on: Option<NaiveDate>,
    /// valid today (Shanghai)
    pub valid: bool,
}

/// A training session in a transcript.
#[derive(SimpleObject)]
pub struct TranscriptSession {
    /// the session
    pub session_id: ID,
    /// its course
    pub course_id: ID,
    /// the course's title
    pub title: String,
    /// when
    pub starts_at: DateTime<Utc>,
    /// whether they came (none: not marked)
    pub attended: Option<bool>,
}

/// 成绩档案: what promotion and reward decisions rest on.
#[derive(SimpleObject)]
pub struct Transcript {
    /// the employee
    pub user_id: ID,
    /// training sessions, newest first
    pub sessions: Vec<TranscriptSession>,
    /// graded exam attempts, by exam and attempt
    pub exams: Vec<TranscriptExam>,
    /// practical assessments, newest first
    pub practicals: Vec<PracticalScore>,
    /// certificates for special posts
    pub certificates: Vec<TranscriptCertificate>,
}

async fn load_question(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<ExamQuestion> {
    let actor = ctx.actor()?;
    Ok(service::question(ctx.state(), &actor, id).await?.into())
}

async fn load_exam(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Exam> {
    let actor = ctx.actor()?;
    Ok(service::exam(ctx.state(), &actor, id).await?.into())
}

async fn load_attempt(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<ExamAttempt> {
    let actor = ctx.actor()?;
    let state = ctx.state();
    let v = service::attempt(state, &actor, id).await?;
    Ok(ExamAttempt::new(v, state.clock.now()))
}

#[derive(Default)]
pub struct TrainingQuery;

#[Object]
impl TrainingQuery {
    /// 题库 (`training:write`): questions with their answers, in id order.
    #[graphql(guard = "Perm::TrainingWrite")]
    async fn exam_questions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this topic")] topic: Option<String>,
        #[graphql(desc = "the archived ones instead", default)] archived: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<ExamQuestion>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let rows =
            service::questions(ctx.state(), &actor, topic.as_deref(), archived, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |q| q.id, ExamQuestion::from))
    }

    /// 题目类别 (`training:write`) with their active questions.
    #[graphql(guard = "Perm::TrainingWrite")]
    async fn exam_topics(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ExamTopic>> {
        let actor = ctx.actor()?;
        Ok(service::topics(ctx.state(), &actor)
            .await?
            .into_iter()
            .map(|(topic, questions)| ExamTopic { topic, questions })
            .collect())
    }

    /// 考试, newest first: one's own (`mine`), or of the caller's `training:read` projects.
    async fn exams(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] mine: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Exam>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let rows = service::exams(ctx.state(), &actor, mine, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |e| e.id, Exam::from))
    }

    /// One exam (a candidate's, or within `training:read`).
    async fn exam(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Exam> {
        load_exam(ctx, parse_id("id", &id)?).await
    }

    /// One attempt (one's own, or within `training:read`).
    async fn exam_attempt(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ExamAttempt> {
        load_attempt(ctx, parse_id("id", &id)?).await
    }

    /// 我的答卷 of an exam (`self:training`), in order.
    #[graphql(guard = "Perm::SelfTraining")]
    async fn my_exam_attempts(&self, ctx: &Context<'_>, exam_id: ID) -> async_graphql::Result<Vec<ExamAttempt>> {
        let actor = ctx.actor()?;
        let e = parse_id("examId", &exam_id)?;
        let mut out = Vec::new();
        for a in service::my_attempts(ctx.state(), &actor, e).await? {
            out.push(load_attempt(ctx, a.id).await?);
        }
        Ok(out)
    }

    /// 成绩档案: one's own, or an employee's within `training:read`.
    async fn transcript(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<Transcript> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let u = parse_id("userId", &user_id)?;
        let t = service::transcript(state, &actor, u).await?;
        let today = crate::kit::clock::business_date(state.clock.now());
        Ok(Transcript {
            user_id: to_id(t.user_id),
            sessions: t
                .sessions
                .into_iter()
                .map(|(s, title, attended)| TranscriptSession {
                    session_id: to_id(s.id),
                    course_id: to_id(s.course_id),
                    title,
                    starts_at: s.starts_at,
                    attended,
                })
                .collect(),
            exams: t
                .attempts
                .into_iter()
                .map(|(a, title)| TranscriptExam {
                    exam_id: to_id(a.exam_id),
                    title,
                    number: a.number,
                    score: a.score,
                    passed: a.passed,
                    submitted_at: a.submitted_at,
                })
                .collect(),
            practicals: t.practicals.into_iter().map(Into::into).collect(),
            certificates: t
                .certificates
                .into_iter()
                .map(|c| TranscriptCertificate {
                    kind: c.kind.into(),
                    valid: c.valid_on(today),
                    number: c.number,
                    issued_on: c.issued_on,
                    expires_on: c.expires_on,
                })
                .collect(),
        })
    }
}

/// A question to add or change.
#[derive(InputObject)]
pub struct SaveExamQuestionInput {
    /// the question to change; omitted: a new one
    pub id: Option<ID>,
    /// 类别 (up to 30 characters)
    pub topic: String,
    /// single, multiple or true/false
    pub kind: QuestionKind,
    /// 题干 (up to 500 characters)
    pub stem: String,
    /// 2-8 options (true/false: omitted means 正确, 错误)
    #[graphql(default)]
    pub options: Vec<String>,
    /// the indexes of the right options, from 0 (one for single and true/false)
    pub answer: Vec<i32>,
    /// 解析 shown in reviews
    #[graphql(default)]
    pub explanation: String,
    /// true: no longer drawn
    #[graphql(default)]
    pub archived: bool,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// An exam to set.
#[derive(InputObject)]
pub struct CreateExamInput {
    /// its project (omitted: company-wide)
    pub project_id: Option<ID>,
    /// 名称
    pub title: String,
    /// questions drawn per topic (1-20 topics)
    pub draws: Vec<ExamDraw>,
    /// 限时 (1-600)
    pub time_limit_minutes: i32,
    /// 考试次数 (1-10)
    #[graphql(default = 1)]
    pub attempts_allowed: i32,
    /// 及格线 (0-100)
    #[graphql(default = 60)]
    pub pass_mark: i32,
    /// attempts may start from
    pub opens_at: DateTime<Utc>,
    /// until
    pub closes_at: DateTime<Utc>,
    /// 考生: staff of the project (1-1,000), told at once
    pub candidate_ids: Vec<ID>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 开始考试
#[derive(InputObject)]
pub struct StartExamAttemptInput {
    /// the exam
    pub exam_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 答题
#[derive(InputObject)]
pub struct AnswerExamQuestionInput {
    /// the attempt
    pub attempt_id: ID,
    /// the question
    pub question_id: ID,
    /// the places of the chosen options as shown, from 0
    pub choices: Vec<i32>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 交卷
#[derive(InputObject)]
pub struct SubmitExamAttemptInput {
    /// the attempt
    pub attempt_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 实操考核
#[derive(InputObject)]
pub struct ScorePracticalInput {
    /// the employee
    pub user_id: ID,
    /// the project it took place in (omitted: company-wide)
    pub project_id: Option<ID>,
    /// 考核项目 (up to 50 characters)
    pub title: String,
    /// 得分 0-100, at most 2 decimals
    pub score: Decimal,
    /// 合格
    pub passed: bool,
    /// 评语
    #[graphql(default)]
    pub note: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

crate::object_payload!(
    /// The question as it is now.
    ExamQuestionPayload,
    question: ExamQuestion,
    load_question,
    "the question"
);

crate::object_payload!(
    /// The exam as set.
    ExamPayload,
    exam: Exam,
    load_exam,
    "the exam"
);

crate::object_payload!(
    /// The attempt as it is now.
    ExamAttemptPayload,
    attempt: ExamAttempt,
    load_attempt,
    "the attempt"
);

/// The score recorded.
#[derive(SimpleObject)]
pub struct PracticalScorePayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the score's id (see the employee's `transcript`)
    pub practical_score_id: ID,
}

#[derive(Default)]
pub struct TrainingMutation;

#[Object]
impl TrainingMutation {
    /// 题库 (`training:write`).
    #[graphql(guard = "Perm::TrainingWrite")]
    async fn save_exam_question(
        &self,
        ctx: &Context<'_>,
        input: SaveExamQuestionInput,
    ) -> async_graphql::Result<ExamQuestionPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = QuestionInput {
            id: parse_opt_id("id", input.id.as_ref())?,
            topic: input.topic,
            kind: input.kind.into(),
            stem: input.stem,
            options: input.options,
            answer: input.answer,
            explanation: input.explanation,
            archived: input.archived,
        };
        let id = service::save_question(ctx.state(), &actor, &retry, i).await?;
        Ok(ExamQuestionPayload::new(input.client_mutation_id, id))
    }

    /// 组卷 (`training:write` over the project or the company).
    #[graphql(guard = "Perm::TrainingWrite")]
    async fn create_exam(&self, ctx: &Context<'_>, input: CreateExamInput) -> async_graphql::Result<ExamPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = ExamInput {
            project_id: parse_opt_id("projectId", input.project_id.as_ref())?,
            title: input.title,
            draws: input.draws.into_iter().map(|d| model::Draw { topic: d.topic, count: d.count }).collect(),
            time_limit_minutes: input.time_limit_minutes,
            attempts_allowed: input.attempts_allowed,
            pass_mark: input.pass_mark,
            opens_at: input.opens_at,
            closes_at: input.closes_at,
            candidates: parse_ids("candidateIds", &input.candidate_ids)?,
        };
        let id = service::create_exam(ctx.state(), &actor, &retry, i).await?;
        Ok(ExamPayload::new(input.client_mutation_id, id))
    }

    /// 开始考试 (`self:training`): a new attempt, or the one still running.
    #[graphql(guard = "Perm::SelfTraining")]
    async fn start_exam_attempt(
        &self,
        ctx: &Context<'_>,
        input: StartExamAttemptInput,
    ) -> async_graphql::Result<ExamAttemptPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let e = parse_id("examId", &input.exam_id)?;
        let id = service::start(ctx.state(), &actor, &retry, e).await?;
        Ok(ExamAttemptPayload::new(input.client_mutation_id, id))
    }

    /// 答题 (`self:training`): refused after the deadline (`FORBIDDEN TIME_UP`).
    #[graphql(guard = "Perm::SelfTraining")]
    async fn answer_exam_question(
        &self,
        ctx: &Context<'_>,
        input: AnswerExamQuestionInput,
    ) -> async_graphql::Result<ExamAttemptPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let a = parse_id("attemptId", &input.attempt_id)?;
        let q = parse_id("questionId", &input.question_id)?;
        let id = service::answer(ctx.state(), &actor, &retry, a, q, &input.choices).await?;
        Ok(ExamAttemptPayload::new(input.client_mutation_id, id))
    }

    /// 交卷 (`self:training`): graded at once.
    #[graphql(guard = "Perm::SelfTraining")]
    async fn submit_exam_attempt(
        &self,
        ctx: &Context<'_>,
        input: SubmitExamAttemptInput,
    ) -> async_graphql::Result<ExamAttemptPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let a = parse_id("attemptId", &input.attempt_id)?;
        let id = service::submit(ctx.state(), &actor, &retry, a).await?;
        Ok(ExamAttemptPayload::new(input.client_mutation_id, id))
    }

    /// 实操考核 (`training:write`): a trainer's score; the employee is told.
    #[graphql(guard = "Perm::TrainingWrite")]
    async fn score_practical(
        &self,
        ctx: &Context<'_>,
        input: ScorePracticalInput,
    ) -> async_graphql::Result<PracticalScorePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = PracticalInput {
            user_id: parse_id("userId", &input.user_id)?,
            project_id: parse_opt_id("projectId", input.project_id.as_ref())?,
            title: input.title,
            score: input.score,
            passed: input.passed,
            note: input.note,
        };
        let id = service::score_practical(ctx.state(), &actor, &retry, i).await?;
        Ok(PracticalScorePayload { client_mutation_id: input.client_mutation_id, practical_score_id: to_id(id) })
    }
}

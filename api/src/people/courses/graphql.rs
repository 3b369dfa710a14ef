//! 培训 over GraphQL: courses with their materials, sessions and who came. Materials are
//! uploaded on `POST /training/courses/{courseId}/materials` (see the README).

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model;
use super::service::{self, CourseInput, SessionInput};
use crate::kit::gql::{Conn, StateExt, parse_id, parse_ids, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 课件类别
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::MaterialKind")]
pub enum MaterialKind {
    /// PDF 文档
    Pdf,
    /// 视频
    Video,
}

/// 课程
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Course {
    /// the course's id
    pub id: ID,
    /// its project (none: company-wide)
    pub project_id: Option<ID>,
    /// 课程名称
    pub title: String,
    /// 培训内容
    pub content: String,
    /// 培训对象
    pub audience: String,
    /// when it last changed
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    uuid: Uuid,
}

impl From<model::Course> for Course {
    fn from(c: model::Course) -> Self {
        Course {
            id: to_id(c.id),
            uuid: c.id,
            project_id: c.project_id.map(to_id),
            title: c.title,
            content: c.content,
            audience: c.audience,
            updated_at: c.updated_at,
        }
    }
}

/// 课件
#[derive(SimpleObject)]
pub struct CourseMaterial {
    /// the material's id
    pub id: ID,
    /// PDF or video
    pub kind: MaterialKind,
    /// 名称
    pub name: String,
    /// its size
    pub size_bytes: i64,
    /// a signed URL valid five minutes
    pub url: String,
    /// when it was uploaded
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl Course {
    /// 课件, in upload order
    async fn materials(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CourseMaterial>> {
        let state = ctx.state();
        Ok(service::materials_of(state, &[self.uuid])
            .await?
            .into_iter()
            .map(|m| CourseMaterial {
                id: to_id(m.id),
                kind: m.kind.into(),
                url: crate::files::service::signed_url(state, &m.file_key),
                name: m.name,
                size_bytes: m.size_bytes,
                created_at: m.created_at,
            })
            .collect())
    }
}

/// One attendee of a session.
#[derive(SimpleObject)]
pub struct SessionAttendee {
    /// the employee
    pub user_id: ID,
    /// whether they came (none: not marked yet)
    pub attended: Option<bool>,
    /// when it was marked
    pub marked_at: Option<DateTime<Utc>>,
}

/// 培训场次
#[derive(SimpleObject)]
pub struct TrainingSession {
    /// the session's id
    pub id: ID,
    /// the course
    pub course_id: ID,
    /// its project (none: company-wide)
    pub project_id: Option<ID>,
    /// 开始
    pub starts_at: DateTime<Utc>,
    /// 结束
    pub ends_at: DateTime<Utc>,
    /// 地点
    pub place: String,
    /// 讲师
    pub trainer_id: ID,
    /// 参训人员
    pub attendees: Vec<SessionAttendee>,
}

impl TrainingSession {
    fn new(s: model::Session, attendees: Vec<model::Attendee>) -> Self {
        TrainingSession {
            id: to_id(s.id),
            course_id: to_id(s.course_id),
            project_id: s.project_id.map(to_id),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            place: s.place,
            trainer_id: to_id(s.trainer_id),
            attendees: attendees
                .into_iter()
                .map(|a| SessionAttendee { user_id: to_id(a.user_id), attended: a.attended, marked_at: a.marked_at })
                .collect(),
        }
    }
}

async fn load_course(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Course> {
    let actor = ctx.actor()?;
    Ok(service::course(ctx.state(), &actor, id).await?.into())
}

async fn load_session(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<TrainingSession> {
    let actor = ctx.actor()?;
    let (s, a) = service::session(ctx.state(), &actor, id).await?;
    Ok(TrainingSession::new(s, a))
}

#[derive(Default)]
pub struct CourseQuery;

#[Object]
impl CourseQuery {
    /// 课程 of the caller's `training:read` projects and the company-wide ones, in id order.
    #[graphql(guard = "Perm::TrainingRead")]
    async fn courses(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Course>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let rows = service::courses(ctx.state(), &actor, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |c| c.id, Course::from))
    }

    /// One course (readers of training there, and those taking part in one of its sessions).
    async fn course(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Course> {
        load_course(ctx, parse_id("id", &id)?).await
    }

    /// 培训安排 starting within `from..to` (up to 92 days): one's own (`mine`), or of the
    /// caller's `training:read` projects.
    async fn training_sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] mine: bool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> async_graphql::Result<Vec<TrainingSession>> {
        let actor = ctx.actor()?;
        Ok(service::sessions(ctx.state(), &actor, mine, from, to)
            .await?
            .into_iter()
            .map(|(s, a)| TrainingSession::new(s, a))
            .collect())
    }

    /// One session (readers of training there, its trainer and attendees).
    async fn training_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TrainingSession> {
        load_session(ctx, parse_id("id", &id)?).await
    }
}

/// A course to add or change.
#[derive(InputObject)]
pub struct SaveCourseInput {
    /// the course to change; omitted: a new one
    pub id: Option<ID>,
    /// its project (new courses; omitted: company-wide)
    pub project_id: Option<ID>,
    /// 课程名称 (up to 50 characters)
    pub title: String,
    /// 培训内容 (up to 5,000 characters)
    #[graphql(default)]
    pub content: String,
    /// 培训对象 (up to 100 characters)
    #[graphql(default)]
    pub audience: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A material to remove.
#[derive(InputObject)]
pub struct RemoveCourseMaterialInput {
    /// the material
    pub material_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 安排培训
#[derive(InputObject)]
pub struct ScheduleTrainingSessionInput {
    /// the course
    pub course_id: ID,
    /// 开始
    pub starts_at: DateTime<Utc>,
    /// 结束 (within 24 hours of the start)
    pub ends_at: DateTime<Utc>,
    /// 地点
    pub place: String,
    /// 讲师 (a staff member)
    pub trainer_id: ID,
    /// 参训人员 (1-500 staff), told at once
    pub attendee_ids: Vec<ID>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 签到
#[derive(InputObject)]
pub struct MarkSessionAttendanceInput {
    /// the session (started)
    pub session_id: ID,
    /// attendees who came
    #[graphql(default)]
    pub attended_ids: Vec<ID>,
    /// attendees who did not
    #[graphql(default)]
    pub absent_ids: Vec<ID>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

crate::object_payload!(
    /// The course as it is now.
    CoursePayload,
    course: Course,
    load_course,
    "the course"
);

crate::object_payload!(
    /// The session as it is now.
    TrainingSessionPayload,
    session: TrainingSession,
    load_session,
    "the session"
);

#[derive(Default)]
pub struct CourseMutation;

#[Object]
impl CourseMutation {
    /// 课程 (`training:write` over its project or the company).
    #[graphql(guard = "Perm::TrainingWrite")]
    async fn save_course(&self, ctx: &Context<'_>, input: SaveCourseInput) -> async_graphql::Result<CoursePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = CourseInput {
            id: parse_opt_id("id", input.id.as_ref())?,
            project_id: parse_opt_id("projectId", input.project_id.as_ref())?,
            title: input.title,
            content: input.content,
            audience: input.audience,
        };
        let id = service::save_course(ctx.state(), &actor, &retry, i).await?;
        Ok(CoursePayload::new(input.client_mutation_id, id))
    }

    /// 删除课件 (`training:write` over the course).
    #[graphql(guard = "Perm::TrainingWrite")]
    async fn remove_course_material(
        &self,
        ctx: &Context<'_>,
        input: RemoveCourseMaterialInput,
    ) -> async_graphql::Result<crate::kit::gql::DeletedPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("materialId", &input.material_id)?;
        let id = service::remove_material(ctx.state(), &actor, &retry, id).await?;
        Ok(crate::kit::gql::DeletedPayload::new(input.client_mutation_id, id))
    }

    /// 安排培训 (`training:write` over the course): attendees and trainer are told.
    #[graphql(guard = "Perm::TrainingWrite")]
    async fn schedule_training_session(
        &self,
        ctx: &Context<'_>,
        input: ScheduleTrainingSessionInput,
    ) -> async_graphql::Result<TrainingSessionPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = SessionInput {
            course_id: parse_id("courseId", &input.course_id)?,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            place: input.place,
            trainer_id: parse_id("trainerId", &input.trainer_id)?,
            attendees: parse_ids("attendeeIds", &input.attendee_ids)?,
        };
        let id = service::schedule(ctx.state(), &actor, &retry, i).await?;
        Ok(TrainingSessionPayload::new(input.client_mutation_id, id))
    }

    /// 签到 (the session's trainer, or `training:write`): who came and who did not.
    async fn mark_session_attendance(
        &self,
        ctx: &Context<'_>,
        input: MarkSessionAttendanceInput,
    ) -> async_graphql::Result<TrainingSessionPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let s = parse_id("sessionId", &input.session_id)?;
        let came = parse_ids("attendedIds", &input.attended_ids)?;
        let missed = parse_ids("absentIds", &input.absent_ids)?;
        let id = service::mark_attendance(ctx.state(), &actor, &retry, s, &came, &missed).await?;
        Ok(TrainingSessionPayload::new(input.client_mutation_id, id))
    }
}

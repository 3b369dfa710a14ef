//! 客服 over GraphQL: owners' feedback, the conversation, conversion to a work order.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model;
use super::service::{self, SubmitInput};
use crate::kit::gql::{Conn, StateExt, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;
use crate::workorders::graphql::WorkOrderCategory;

/// 类型 what the owner says
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Kind")]
pub enum FeedbackKind {
    /// 投诉 (first reply within 2 hours)
    Complaint,
    /// 建议 (within a day)
    Suggestion,
    /// 表扬 (within a day)
    Praise,
    /// 咨询 (within 4 hours)
    Enquiry,
}

/// 状态 OPEN (customer service's turn) ⇄ REPLIED (the owner's turn) → CLOSED
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::State")]
pub enum FeedbackState {
    /// waiting for customer service
    Open,
    /// answered; waiting for the owner
    Replied,
    /// done
    Closed,
}

/// One message of a feedback's conversation.
#[derive(SimpleObject)]
pub struct FeedbackMessage {
    /// who wrote it
    pub author_id: ID,
    /// customer service (true) or the owner (false)
    pub from_staff: bool,
    /// what they wrote
    pub body: String,
    /// when
    pub at: DateTime<Utc>,
}

/// 投诉建议 one piece of owner feedback.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Feedback {
    /// the feedback's id
    pub id: ID,
    /// the estate
    pub project_id: ID,
    /// the owner
    pub owner_id: ID,
    /// the house it is about (null: a public area)
    pub house_id: Option<ID>,
    /// what kind
    pub kind: FeedbackKind,
    /// what the owner wrote first
    pub content: String,
    /// keys of the owner's photos
    pub photos: Vec<String>,
    /// where it stands
    pub state: FeedbackState,
    /// the work order it was turned into
    pub work_order_id: Option<ID>,
    /// customer service answers by then
    pub respond_due_at: DateTime<Utc>,
    /// when customer service first answered
    pub first_reply_at: Option<DateTime<Utc>>,
    /// when it was closed
    pub closed_at: Option<DateTime<Utc>>,
    /// the owner's rating of the handling (1 to 5)
    pub rating: Option<i32>,
    /// the owner's comment on the handling
    pub rating_comment: String,
    /// when it was submitted
    pub created_at: DateTime<Utc>,
}

impl From<model::Feedback> for Feedback {
    fn from(f: model::Feedback) -> Self {
        Feedback {
            id: to_id(f.id),
            project_id: to_id(f.project_id),
            owner_id: to_id(f.owner_id),
            house_id: f.house_id.map(to_id),
            kind: f.kind.into(),
            content: f.content,
            photos: f.photos,
            state: f.state.into(),
            work_order_id: f.work_order_id.map(to_id),
            respond_due_at: f.respond_due_at,
            first_reply_at: f.first_reply_at,
            closed_at: f.closed_at,
            rating: f.rating.map(i32::from),
            rating_comment: f.rating_comment,
            created_at: f.created_at,
        }
    }
}

#[ComplexObject]
impl Feedback {
    /// the conversation, oldest first
    async fn messages(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FeedbackMessage>> {
        let id = parse_id("id", &self.id)?;
        Ok(service::messages_of(ctx.state(), &[id])
            .await?
            .into_iter()
            .map(|m| FeedbackMessage {
                author_id: to_id(m.author_id),
                from_staff: m.from_staff,
                body: m.body,
                at: m.at,
            })
            .collect())
    }

    /// the photos, as URLs that work for five minutes
    async fn photo_urls(&self, ctx: &Context<'_>) -> Vec<String> {
        self.photos.iter().map(|k| crate::files::service::signed_url(ctx.state(), k)).collect()
    }
}

pub async fn load_feedback(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Feedback> {
    let actor = ctx.actor()?;
    Ok(service::get(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The feedback a mutation made or changed.
    FeedbackPayload, feedback: Feedback, load_feedback, "the feedback as it is now"
);

#[derive(Default)]
pub struct FeedbackQuery;

#[Object]
impl FeedbackQuery {
    /// 投诉建议 newest first: staff see their projects' (`feedback:read`), an owner their own.
    async fn feedback_list(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this estate's")] project_id: Option<ID>,
        #[graphql(desc = "only in these states")] states: Option<Vec<FeedbackState>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Feedback>> {
        let actor = ctx.actor()?;
        let page = Page::<(DateTime<Utc>, Uuid)>::new(ctx, first, after)?;
        let project = parse_opt_id("projectId", project_id.as_ref())?;
        let states: Vec<model::State> = states.unwrap_or_default().into_iter().map(Into::into).collect();
        let rows = service::list(ctx.state(), &actor, project, &states, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| (r.created_at, r.id), Feedback::from))
    }

    /// One piece of feedback (its owner, or the estate's customer service).
    async fn feedback(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Feedback> {
        load_feedback(ctx, parse_id("id", &id)?).await
    }
}

/// 投诉建议 what an owner says.
#[derive(InputObject)]
pub struct SubmitFeedbackInput {
    /// what kind
    pub kind: FeedbackKind,
    /// 1 to 1000 characters
    pub content: String,
    /// a house the caller lives in, or
    pub house_id: Option<ID>,
    /// an estate the caller lives in (a public area; default: their first estate)
    pub project_id: Option<ID>,
    /// keys of photos the caller uploaded with `uploadFile` (up to 9)
    #[graphql(default)]
    pub photos: Vec<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A message in a feedback's conversation.
#[derive(InputObject)]
pub struct PostFeedbackMessageInput {
    /// the feedback
    pub feedback_id: ID,
    /// 1 to 1000 characters
    pub body: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Turns feedback into a work order.
#[derive(InputObject)]
pub struct ConvertFeedbackInput {
    /// the feedback
    pub feedback_id: ID,
    /// the repair's category
    pub category: WorkOrderCategory,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Closes feedback.
#[derive(InputObject)]
pub struct CloseFeedbackInput {
    /// the feedback
    pub feedback_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The owner's rating of the handling.
#[derive(InputObject)]
pub struct RateFeedbackInput {
    /// answered feedback of the caller's
    pub feedback_id: ID,
    /// 1 to 5
    pub rating: i32,
    /// up to 200 characters
    pub comment: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct FeedbackMutation;

#[Object]
impl FeedbackMutation {
    /// 投诉建议 (owner app, `self:house`): the estate's customer service is told.
    #[graphql(guard = "Perm::SelfHouse")]
    async fn submit_feedback(
        &self,
        ctx: &Context<'_>,
        input: SubmitFeedbackInput,
    ) -> async_graphql::Result<FeedbackPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = SubmitInput {
            project_id: parse_opt_id("projectId", input.project_id.as_ref())?,
            house_id: parse_opt_id("houseId", input.house_id.as_ref())?,
            kind: input.kind.into(),
            content: input.content,
            photos: input.photos,
        };
        let id = service::submit(ctx.state(), &actor, &retry, i).await?;
        Ok(FeedbackPayload::new(input.client_mutation_id, id))
    }

    /// A reply from customer service (`feedback:handle`; the owner is told) or a follow-up
    /// from the owner (customer service is told).
    async fn post_feedback_message(
        &self,
        ctx: &Context<'_>,
        input: PostFeedbackMessageInput,
    ) -> async_graphql::Result<FeedbackPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("feedbackId", &input.feedback_id)?;
        let id = service::post(ctx.state(), &actor, &retry, id, &input.body).await?;
        Ok(FeedbackPayload::new(input.client_mutation_id, id))
    }

    /// 转工单 (`feedback:handle` and `workorder:create`): opens a work order for the owner.
    #[graphql(guard = "Perm::FeedbackHandle")]
    async fn convert_feedback_to_work_order(
        &self,
        ctx: &Context<'_>,
        input: ConvertFeedbackInput,
    ) -> async_graphql::Result<FeedbackPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("feedbackId", &input.feedback_id)?;
        let id = service::convert(ctx.state(), &actor, &retry, id, input.category.into()).await?;
        Ok(FeedbackPayload::new(input.client_mutation_id, id))
    }

    /// Closes feedback (its customer service or its owner).
    async fn close_feedback(
        &self,
        ctx: &Context<'_>,
        input: CloseFeedbackInput,
    ) -> async_graphql::Result<FeedbackPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::close(ctx.state(), &actor, &retry, parse_id("feedbackId", &input.feedback_id)?).await?;
        Ok(FeedbackPayload::new(input.client_mutation_id, id))
    }

    /// The owner rates the handling of answered feedback; it closes.
    #[graphql(guard = "Perm::SelfHouse")]
    async fn rate_feedback(
        &self,
        ctx: &Context<'_>,
        input: RateFeedbackInput,
    ) -> async_graphql::Result<FeedbackPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("feedbackId", &input.feedback_id)?;
        let rating = i16::try_from(input.rating).unwrap_or(0);
        let id = service::rate(ctx.state(), &actor, &retry, id, rating, input.comment.as_deref()).await?;
        Ok(FeedbackPayload::new(input.client_mutation_id, id))
    }
}

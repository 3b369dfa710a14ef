//! Announcements API: publish (staff with `announcement:write`), list, mark read.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::model;
use super::service::{self, PublishInput};
use crate::graphql::{Conn, CtxExt, Page};
use crate::rbac::graphql::parse_id;
use crate::rbac::model::{Perm, UserKind};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncementAudience {
    /// every owner, member and tenant of the project
    Owners,
    /// the residents of one building
    Building,
    /// the project's staff only
    Staff,
}

pub struct Announcement {
    a: model::Announcement,
    staff_view: bool,
}

#[Object]
impl Announcement {
    async fn id(&self) -> ID {
        ID(self.a.id.to_string())
    }
    async fn project_id(&self) -> ID {
        ID(self.a.project_id.to_string())
    }
    async fn audience(&self) -> AnnouncementAudience {
        match self.a.audience.as_str() {
            "building" => AnnouncementAudience::Building,
            "staff" => AnnouncementAudience::Staff,
            _ => AnnouncementAudience::Owners,
        }
    }
    async fn building_id(&self) -> Option<ID> {
        self.a.building_id.map(|b| ID(b.to_string()))
    }
    async fn title(&self) -> &str {
        &self.a.title
    }
    async fn body(&self) -> &str {
        &self.a.body
    }
    async fn pinned(&self) -> bool {
        self.a.pinned
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.a.expires_at
    }
    async fn published_at(&self) -> DateTime<Utc> {
        self.a.published_at
    }
    /// whether the caller has read it
    async fn read(&self) -> bool {
        self.a.read
    }
    /// read receipts: staff only
    async fn read_count(&self) -> Option<i64> {
        self.staff_view.then_some(self.a.read_count)
    }
    /// how many people it was sent to: staff only
    async fn recipient_count(&self) -> Option<i32> {
        self.staff_view.then_some(self.a.recipients)
    }
}

fn view(ctx: &Context<'_>, a: model::Announcement) -> Announcement {
    let staff_view = ctx.actor().is_ok_and(|actor| actor.kind == UserKind::Staff);
    Announcement { a, staff_view }
}

#[derive(Default)]
pub struct AnnouncementQuery;

#[Object]
impl AnnouncementQuery {
    /// Announcements the caller can see, newest first: owners see their estates' current
    /// notices; staff see their projects' notices including staff-only and expired ones.
    async fn announcements(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        #[graphql(default)] pinned_only: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Announcement>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let project = project_id.as_ref().map(|p| parse_id("projectId", p)).transpose()?;
        let rows = service::list(ctx.state(), &actor, project, pinned_only, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |a| a.id, |a| view(ctx, a)))
    }
}

#[derive(InputObject)]
pub struct PublishAnnouncementInput {
    pub project_id: ID,
    pub audience: AnnouncementAudience,
    /// required when the audience is BUILDING
    pub building_id: Option<ID>,
    pub title: String,
    pub body: String,
    #[graphql(default)]
    pub pinned: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct AnnouncementPayload {
    pub announcement: Announcement,
}

#[derive(InputObject)]
pub struct MarkAnnouncementReadInput {
    pub announcement_id: ID,
}

#[derive(Default)]
pub struct AnnouncementMutation;

#[Object]
impl AnnouncementMutation {
    /// Publishes and pushes the notice to its audience.
    #[graphql(guard = "Perm::AnnouncementWrite")]
    async fn publish_announcement(
        &self,
        ctx: &Context<'_>,
        input: PublishAnnouncementInput,
    ) -> async_graphql::Result<AnnouncementPayload> {
        let actor = ctx.actor()?;
        let a = service::publish(
            ctx.state(),
            &actor,
            PublishInput {
                project_id: parse_id("projectId", &input.project_id)?,
                audience: match input.audience {
                    AnnouncementAudience::Owners => "owners",
                    AnnouncementAudience::Building => "building",
                    AnnouncementAudience::Staff => "staff",
                },
                building_id: input.building_id.as_ref().map(|b| parse_id("buildingId", b)).transpose()?,
                title: &input.title,
                body: &input.body,
                pinned: input.pinned,
                expires_at: input.expires_at,
            },
        )
        .await?;
        Ok(AnnouncementPayload { announcement: view(ctx, a) })
    }

    async fn mark_announcement_read(
        &self,
        ctx: &Context<'_>,
        input: MarkAnnouncementReadInput,
    ) -> async_graphql::Result<AnnouncementPayload> {
        let actor = ctx.actor()?;
        let a = service::mark_read(ctx.state(), &actor, parse_id("announcementId", &input.announcement_id)?).await?;
        Ok(AnnouncementPayload { announcement: view(ctx, a) })
    }
}

//! 打印 over GraphQL: `printBillRun` and `billPrint` (a run's bills as one PDF, rendered
//! in the background); each bill's `pdfUrl` and each payment's `receiptUrl` are on them.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::model;
use super::service;
use crate::kit::gql::{StateExt, parse_id, parse_ids, to_id};
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 打印任务状态
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PrintStatus")]
pub enum BillPrintStatus {
    /// waiting for a renderer
    Queued,
    /// pages being rendered (see `rendered` of `pages`)
    Rendering,
    /// the PDF is ready at `url`
    Done,
    /// rendering failed (see `error`)
    Failed,
}

/// 批量打印 a run's bills as one PDF, one bill a page.
#[derive(SimpleObject)]
pub struct BillPrint {
    /// the print's id
    pub id: ID,
    /// the run printed
    pub run_id: ID,
    /// only these buildings' bills (empty: all of the run's)
    pub building_ids: Vec<ID>,
    /// queued, rendering, done or failed
    pub status: BillPrintStatus,
    /// bills to print (known once rendering starts)
    pub pages: i32,
    /// bills rendered so far
    pub rendered: i32,
    /// when done: the PDF, through a signed URL valid five minutes (ask again for a new one)
    pub url: Option<String>,
    /// when failed: why
    pub error: Option<String>,
    /// when it was asked for
    pub created_at: DateTime<Utc>,
    /// when it was done or failed
    pub finished_at: Option<DateTime<Utc>>,
}

impl BillPrint {
    fn new(ctx: &Context<'_>, p: model::Print) -> Self {
        BillPrint {
            id: to_id(p.id),
            run_id: to_id(p.run_id),
            building_ids: p.building_ids.into_iter().map(to_id).collect(),
            status: p.status.into(),
            pages: p.pages,
            rendered: p.rendered,
            url: p.file_key.map(|k| crate::files::service::signed_url(ctx.state(), &k)),
            error: p.error,
            created_at: p.created_at,
            finished_at: p.finished_at,
        }
    }
}

#[derive(Default)]
pub struct PrintQuery;

#[Object]
impl PrintQuery {
    /// A run print and its progress (`bill:read` on the run's project).
    #[graphql(guard = "Perm::BillRead")]
    async fn bill_print(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<BillPrint> {
        let actor = ctx.actor()?;
        let p = service::print(ctx.state(), &actor, parse_id("id", &id)?).await?;
        Ok(BillPrint::new(ctx, p))
    }
}

/// A run's bills to print.
#[derive(InputObject)]
pub struct PrintBillRunInput {
    /// the run (its bills as they are now)
    pub run_id: ID,
    /// only these buildings' bills (at most 200; none: all)
    #[graphql(default)]
    pub building_ids: Vec<ID>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The print asked for: follow it on `billPrint`.
#[derive(SimpleObject)]
pub struct PrintBillRunPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the print, queued
    pub bill_print: BillPrint,
}

#[derive(Default)]
pub struct PrintMutation;

#[Object]
impl PrintMutation {
    /// 批量打印账单 (`bill:read` on the run's project): the run's bills as one PDF, one bill
    /// a page in building, unit and room order, rendered in the background.
    #[graphql(guard = "Perm::BillRead")]
    async fn print_bill_run(
        &self,
        ctx: &Context<'_>,
        input: PrintBillRunInput,
    ) -> async_graphql::Result<PrintBillRunPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let run = parse_id("runId", &input.run_id)?;
        let buildings = parse_ids("buildingIds", &input.building_ids)?;
        let id = service::print_run(ctx.state(), &actor, &retry, run, buildings).await?;
        let p = service::print(ctx.state(), &actor, id).await?;
        Ok(PrintBillRunPayload { client_mutation_id: input.client_mutation_id, bill_print: BillPrint::new(ctx, p) })
    }
}

//! 打印 rules: who may print what; one bill or receipt rendered when asked (a page takes
//! milliseconds) and kept while the bill stays as it is; a run's bills rendered in the
//! background, a chunk at a time, with progress, by one replica at a time (a lease).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::Datelike;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::model::{Print, PrintStatus};
use super::{render, repo};
use crate::files::model::Purpose;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::pdf::{Doc, Font, PdfError};
use crate::kit::state::AppState;
use crate::rbac::model::{Actor, Perm};

/// A renderer that stopped more often than this on one print gives it up.
const MAX_ATTEMPTS: i32 = 3;

/// Run prints of a company queued or rendering at once, at most.
const MAX_ACTIVE: i64 = 3;

/// The font every document embeds, loaded on first use (a state part).
pub struct Printer {
    path: PathBuf,
    index: u32,
    font: OnceLock<Result<Arc<Font>, String>>,
    /// documents rendered on request at once in this process: a request of a hundred
    /// aliases of one bill renders it once, the others wait and find it stored
    on_request: tokio::sync::Semaphore,
}

impl Printer {
    pub fn new(config: &crate::kit::config::PrintConfig) -> Self {
        Printer {
            path: config.font_path.clone(),
            index: config.font_index,
            font: OnceLock::new(),
            on_request: tokio::sync::Semaphore::new(2),
        }
    }

    fn font(&self) -> AppResult<Arc<Font>> {
        match self.font.get_or_init(|| Font::load(&self.path, self.index).map_err(|e| e.to_string())) {
            Ok(f) => Ok(f.clone()),
            Err(reason) => Err(AppError::internal(PdfError::Font {
                path: self.path.display().to_string(),
                reason: reason.clone(),
            })),
        }
    }
}

fn pdf_error(e: PdfError) -> AppError {
    AppError::internal(e)
}

/// A short hash of what a document shows: its version in the file's name.
fn tag(fingerprint: &str) -> String {
    Sha256::digest(fingerprint.as_bytes()).iter().take(8).map(|x| format!("{x:02x}")).collect()
}

/// Renders one document off the async threads.
async fn render_doc(
    state: &AppState,
    title: String,
    draw: impl FnOnce(&mut Doc) + Send + 'static,
) -> AppResult<Vec<u8>> {
    let font = state.part::<Printer>()?.font()?;
    tokio::task::spawn_blocking(move || {
        let mut doc = Doc::new(font, &title);
        draw(&mut doc);
        doc.finish()
    })
    .await
    .map_err(AppError::internal)?
    .map_err(pdf_error)
}

/// Stores a new version of a document and removes the versions before it.
async fn keep_version(
    state: &AppState,
    company: Uuid,
    by: Uuid,
    purpose: Purpose,
    prefix: &str,
    key: &str,
    bytes: &[u8],
) -> AppResult<()> {
    crate::files::service::store_generated(state, company, by, purpose, key, "application/pdf", bytes).await?;
    crate::files::service::remove_versions(state, prefix, key).await
}

/// 打印账单 one bill as a PDF (staff who read its project's bills, or the owner who pays
/// it): a signed URL valid a few minutes. Made again only when something it shows changed
/// (the earlier version is removed then).
pub async fn bill_pdf(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<String> {
    let b = crate::billing::bills::service::bill(state, actor, id).await?;
    let mut conn = state.db.acquire().await?;
    let sheet = repo::sheets(&mut conn, b.company_id, &[b.id]).await?.pop().ok_or(AppError::not_found("bill"))?;
    drop(conn);
    let prefix = format!("private/{}/bill/{}-", b.company_id, b.id.simple());
    let key = format!("{prefix}{}.pdf", tag(&sheet.fingerprint()));
    let printer = state.part::<Printer>()?;
    let _turn = printer.on_request.acquire().await.map_err(AppError::internal)?;
    if !crate::files::service::stored(state, &key).await? {
        let title = format!("{}年{}月账单", b.period.year(), b.period.month());
        let bytes = render_doc(state, title, move |doc| render::bill(doc, &sheet)).await?;
        keep_version(state, b.company_id, actor.user_id, Purpose::Bill, &prefix, &key, &bytes).await?;
    }
    Ok(crate::files::service::signed_url(state, &key))
}

/// 收据 of a payment as a PDF (staff who read the project's bills or take payments, or the
/// owner who paid): a signed URL valid a few minutes.
pub async fn receipt_pdf(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<String> {
    let (p, _) = crate::billing::bills::service::payment(state, actor, id).await?;
    let mut conn = state.db.acquire().await?;
    let r = repo::receipt(&mut conn, p.company_id, p.id).await?.ok_or(AppError::not_found("payment"))?;
    drop(conn);
    let prefix = format!("private/{}/receipt/{}-", p.company_id, p.id.simple());
    let key = format!("{prefix}{}.pdf", tag(&r.fingerprint()));
    let printer = state.part::<Printer>()?;
    let _turn = printer.on_request.acquire().await.map_err(AppError::internal)?;
    if !crate::files::service::stored(state, &key).await? {
        let title = format!("收据 {}", r.receipt_no);
        let bytes = render_doc(state, title, move |doc| render::receipt(doc, &r)).await?;
        keep_version(state, p.company_id, actor.user_id, Purpose::Receipt, &prefix, &key, &bytes).await?;
    }
    Ok(crate::files::service::signed_url(state, &key))
}

/// 批量打印 a run's bills (or some buildings' of them) as one PDF, one bill a page,
/// rendered in the background (`bill:read` on the run's project). Returns the print; its
/// progress and then its URL are on `billPrint`.
pub async fn print_run(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    run: Uuid,
    buildings: Vec<Uuid>,
) -> AppResult<Uuid> {
    let r = crate::billing::bills::service::run(state, actor, run).await?;
    if !actor.reaches(&[Perm::BillRead], r.project_id) {
        return Err(AppError::not_found("billRun"));
    }
    let mut buildings = buildings;
    if buildings.len() > 200 {
        return Err(AppError::validation("buildingIds", Msg::new("最多200个楼栋", "At most 200 buildings")));
    }
    buildings.sort();
    buildings.dedup();
    if !buildings.is_empty() {
        let n =
            crate::org::estate::service::count_buildings_of_project(state, actor.company_id, r.project_id, &buildings)
                .await?;
        if n as usize != buildings.len() {
            return Err(AppError::validation(
                "buildingIds",
                Msg::new("楼栋不属于该批次的项目", "A building is not of the run's project"),
            ));
        }
    }
    if repo::run_bills(&state.db, run, &buildings).await?.is_empty() {
        return Err(AppError::validation("runId", Msg::new("该批次没有可打印的账单", "The run has no bills to print")));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    // the same print asked again while one is on its way: that one; and a company renders
    // a few at a time
    let (same, active) = repo::active(&mut tx, actor.company_id, run, &buildings).await?;
    if let Some(id) = same {
        tx.commit(&id).await?;
        return Ok(id);
    }
    if active >= MAX_ACTIVE {
        return Err(AppError::conflict(
            "runId",
            Msg::new(
                "打印任务较多，请等待当前任务完成后再试",
                "Too many prints on their way: try again when one is done",
            ),
        ));
    }
    let p = Print {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        run_id: run,
        building_ids: buildings,
        status: PrintStatus::Queued,
        pages: 0,
        rendered: 0,
        file_key: None,
        error: None,
        attempts: 0,
        requested_by: actor.user_id,
        created_at: state.clock.now(),
        finished_at: None,
    };
    repo::insert(&mut *tx, &p).await?;
    tx.commit(&p.id).await?;
    render_later(state);
    Ok(p.id)
}

/// A run print (`bill:read` on its project).
pub async fn print(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Print> {
    let (p, project) = repo::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("billPrint"))?;
    if !actor.reaches(&[Perm::BillRead], project) {
        return Err(AppError::not_found("billPrint"));
    }
    Ok(p)
}

/// Renders waiting prints in the background now (the scheduler does it otherwise).
fn render_later(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = render_prints(&state).await {
            e.log_if_internal();
            tracing::warn!(error = %e, "bill print failed; the scheduler will retry");
        }
    });
}

/// Renders the waiting prints, one after another, and those a stopped renderer left.
pub async fn render_prints(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    repo::fail_exhausted(&state.db, now, MAX_ATTEMPTS).await?;
    let mut done = 0;
    while let Some(p) = repo::claim(&state.db, state.clock.now(), lease(state), MAX_ATTEMPTS).await? {
        match render_one(state, &p).await {
            Ok(Some(key)) => {
                repo::finish(&state.db, p.id, p.attempts, Some(&key), None, state.clock.now()).await?;
                done += 1;
            }
            // another renderer has it now
            Ok(None) => {}
            Err(e) => {
                e.log_if_internal();
                repo::finish(&state.db, p.id, p.attempts, None, Some(&e.to_string()), state.clock.now()).await?;
            }
        }
    }
    Ok(done)
}

fn lease(state: &AppState) -> chrono::DateTime<chrono::Utc> {
    state.clock.now() + chrono::TimeDelta::seconds(state.config.print.lease_secs as i64)
}

/// The PDF of a print, stored; None when the lease was lost meanwhile.
async fn render_one(state: &AppState, p: &Print) -> AppResult<Option<String>> {
    let bills = repo::run_bills(&state.db, p.run_id, &p.building_ids).await?;
    let total = i32::try_from(bills.len()).unwrap_or(i32::MAX);
    if !repo::progress(&state.db, p.id, p.attempts, total, 0, lease(state)).await? {
        return Ok(None);
    }
    let font = state.part::<Printer>()?.font()?;
    let mut doc = Doc::new(font, &format!("账单 {}", p.run_id));
    let mut rendered = 0usize;
    for chunk in bills.chunks(state.config.print.chunk.max(1)) {
        let mut conn = state.db.acquire().await?;
        let sheets = repo::sheets(&mut conn, p.company_id, chunk).await?;
        drop(conn);
        doc = tokio::task::spawn_blocking(move || {
            for s in &sheets {
                render::bill(&mut doc, s);
            }
            doc
        })
        .await
        .map_err(AppError::internal)?;
        rendered += chunk.len();
        let n = i32::try_from(rendered).unwrap_or(i32::MAX);
        if !repo::progress(&state.db, p.id, p.attempts, total, n, lease(state)).await? {
            return Ok(None);
        }
    }
    let bytes =
        tokio::task::spawn_blocking(move || doc.finish()).await.map_err(AppError::internal)?.map_err(pdf_error)?;
    // still this renderer's, for the upload too
    if !repo::progress(&state.db, p.id, p.attempts, total, total, lease(state)).await? {
        return Ok(None);
    }
    let key = format!("private/{}/bill/run-{}-{}.pdf", p.company_id, p.run_id.simple(), p.id.simple());
    crate::files::service::store_generated(
        state,
        p.company_id,
        p.requested_by,
        Purpose::Bill,
        &key,
        "application/pdf",
        &bytes,
    )
    .await?;
    Ok(Some(key))
}

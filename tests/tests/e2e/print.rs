//! Printed bills and receipts: a bill's PDF read back with poppler (`pdftotext` finds the
//! Chinese words and the amounts, `pdffonts` an embedded subset font, `pdftoppm` renders
//! the page), served privately (another owner cannot get it, a forged or expired URL is
//! refused), a receipt, and a run's bills printed in the background with progress.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

use crate::pay::bills;

const BILL: &str = "query($id: ID!) { bill(id: $id) { id runId total outstanding dueDate pdfUrl
    lines { name amount previousReading currentReading } } }";
const PRINT: &str = "mutation($i: PrintBillRunInput!) { printBillRun(input: $i) { clientMutationId
    billPrint { id status pages rendered url } } }";
const STATUS: &str = "query($id: ID!) { billPrint(id: $id) { id runId status pages rendered url error finishedAt } }";

/// Downloads a signed URL; the PDF's path on disk.
async fn download(s: &TestServer, url: &str, name: &str) -> PathBuf {
    let r = s.http.get(format!("{}{url}", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let path = std::env::temp_dir().join(format!("wuye-{}-{name}.pdf", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, &bytes).unwrap();
    path
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd} (poppler-utils): {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn text_of(pdf: &Path) -> String {
    run("pdftotext", &["-layout", "-enc", "UTF-8", pdf.to_str().unwrap(), "-"])
}

fn pages_of(pdf: &Path) -> usize {
    let info = run("pdfinfo", &[pdf.to_str().unwrap()]);
    info.lines().find_map(|l| l.strip_prefix("Pages:")).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn a_printed_bill_reads_back_in_chinese_and_stays_private() {
    let s = TestServer::seeded().await;
    let b = bills(&s).await;
    let o6 = s.sign_in("13800000006").await;
    let bill = s.ok(Some(&o6), BILL, json!({"id": b.six[1]})).await["bill"].clone();
    let url = bill["pdfUrl"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/private/"), "a signed private URL: {url}");
    let pdf = download(&s, &url, "bill").await;
    let text = text_of(&pdf);
    for word in ["缴费通知单", "缴费人", "缴费截止日期", "缴费方式", "微信支付", "应缴金额", "本期合计"]
    {
        assert!(text.contains(word), "{word} in:\n{text}");
    }
    assert!(text.contains(bill["dueDate"].as_str().unwrap()), "{text}");
    assert!(text.contains(bill["total"].as_str().unwrap()), "the total in:\n{text}");
    for l in bill["lines"].as_array().unwrap() {
        assert!(text.contains(l["name"].as_str().unwrap()), "{l} in:\n{text}");
        assert!(text.contains(l["amount"].as_str().unwrap()), "{l} in:\n{text}");
    }
    // the water line's registers as printed (20 → 35)
    let w = bill["lines"].as_array().unwrap().iter().find(|l| !l["currentReading"].is_null()).expect("a metered line");
    for reading in ["previousReading", "currentReading"] {
        let r: rust_decimal::Decimal = w[reading].as_str().unwrap().parse().unwrap();
        assert!(text.contains(&r.normalize().to_string()), "{w} in:\n{text}");
    }
    // the font is embedded and subset (its name is tagged ABCDEF+…)
    let fonts = run("pdffonts", &[pdf.to_str().unwrap()]);
    let row = fonts.lines().find(|l| l.contains("CID TrueType")).unwrap_or_else(|| panic!("{fonts}"));
    assert!(row.contains('+'), "{fonts}");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(cols.windows(3).any(|w| w == ["yes", "yes", "yes"]), "embedded, subset, with a ToUnicode map: {fonts}");
    let size = std::fs::metadata(&pdf).unwrap().len();
    assert!(size < 200_000, "the subset is small (the whole font is 5 MB): {size} bytes");
    // the page renders
    let png = pdf.with_extension("");
    run(
        "pdftoppm",
        &["-png", "-r", "40", "-f", "1", "-l", "1", "-singlefile", pdf.to_str().unwrap(), png.to_str().unwrap()],
    );
    let image = std::fs::read(png.with_extension("png")).unwrap();
    assert!(image.starts_with(b"\x89PNG"));
    let decoder = png::Decoder::new(std::io::Cursor::new(&image));
    let info = decoder.read_info().unwrap();
    let (w, h) = (info.info().width, info.info().height);
    assert!(w > 300 && h > w, "an A4 page at 40 dpi: {w}×{h}");
    let _ = std::fs::remove_file(png.with_extension("png"));
    let _ = std::fs::remove_file(&pdf);

    // asked again while the bill is as it was: the same file
    let again = s.ok(Some(&o6), BILL, json!({"id": b.six[1]})).await["bill"]["pdfUrl"].as_str().unwrap().to_owned();
    assert_eq!(again.split('?').next(), url.split('?').next());
    assert_eq!(s.scalar("SELECT count(*) FROM files WHERE purpose = 'bill'").await, 1);

    // another owner of the same building: not their bill
    let o7 = s.sign_in("13800000007").await;
    let r = s.gql(Some(&o7), BILL, json!({"id": b.six[1]})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    // a URL altered or past its time
    let forged = url.replace("sig=", "sig=0");
    assert_eq!(s.http.get(format!("{}{forged}", s.url)).send().await.unwrap().status(), 404);
    let other = url.replacen(b.six[1].as_str().unwrap().replace('-', "").as_str(), &"0".repeat(32), 1);
    assert_eq!(s.http.get(format!("{}{other}", s.url)).send().await.unwrap().status(), 404);
    s.advance(301);
    assert_eq!(s.http.get(format!("{}{url}", s.url)).send().await.unwrap().status(), 410);
    // a generated document cannot be attached to a record as a photo
    let key = format!("private/{}", url.trim_start_matches("/private/").split('?').next().unwrap());
    let o6 = s.sign_in("13800000006").await;
    let house = s.ok(Some(&o6), "{ myHouses { id } }", json!({})).await["myHouses"][0]["id"].clone();
    let r = s
        .gql(
            Some(&o6),
            "mutation($i: SubmitFeedbackInput!) { submitFeedback(input: $i) { feedback { id } } }",
            json!({"i": {"kind": "SUGGESTION", "content": "账单打印", "houseId": house, "photos": [key]}}),
        )
        .await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "photos"), "{r}");
}

#[tokio::test]
async fn a_receipt_prints_its_number_and_what_it_paid() {
    let s = TestServer::seeded().await;
    let b = bills(&s).await;
    let finance = s.sign_in("finance1").await;
    let bill = s.ok(Some(&finance), BILL, json!({"id": b.six[0]})).await["bill"].clone();
    let paid = s
        .ok(
            Some(&finance),
            "mutation($i: RecordPaymentInput!) { recordPayment(input: $i) { payment { id receiptNo amount receiptUrl } } }",
            json!({"i": {"billIds": [b.six[0]], "method": "CASH", "amount": bill["outstanding"]}}),
        )
        .await["recordPayment"]["payment"]
        .clone();
    let pdf = download(&s, paid["receiptUrl"].as_str().unwrap(), "receipt").await;
    let text = text_of(&pdf);
    for word in [
        "收据编号",
        "交款人",
        "现金",
        "合计",
        "收款人",
        paid["receiptNo"].as_str().unwrap(),
        paid["amount"].as_str().unwrap(),
    ] {
        assert!(text.contains(word), "{word} in:\n{text}");
    }
    let _ = std::fs::remove_file(&pdf);
    // the payer sees their receipt; another owner does not
    let o6 = s.sign_in("13800000006").await;
    let q = "query($id: ID!) { payment(id: $id) { receiptUrl } }";
    assert!(s.ok(Some(&o6), q, json!({"id": paid["id"]})).await["payment"]["receiptUrl"].is_string());
    let o7 = s.sign_in("13800000007").await;
    assert_eq!(code(&s.gql(Some(&o7), q, json!({"id": paid["id"]})).await), "NOT_FOUND");
}

async fn wait_done(s: &TestServer, token: &str, id: &Value) -> Value {
    for _ in 0..300 {
        let p = s.ok(Some(token), STATUS, json!({"id": id})).await["billPrint"].clone();
        if p["status"] == "DONE" || p["status"] == "FAILED" {
            return p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the print did not finish");
}

#[tokio::test]
async fn a_run_prints_in_the_background_one_page_a_bill() {
    let s = TestServer::seeded().await;
    let b = bills(&s).await;
    let finance = s.sign_in("finance1").await;
    let bill = s.ok(Some(&finance), BILL, json!({"id": b.six[1]})).await["bill"].clone();
    let run_id = bill["runId"].clone();
    let bills_of_run: i64 = sqlx::query_scalar("SELECT count(*) FROM bills WHERE run_id = $1::uuid")
        .bind(run_id.as_str().unwrap())
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(bills_of_run, 2, "the run billed both houses");

    // owners cannot print runs
    let o6 = s.sign_in("13800000006").await;
    let r = s.gql(Some(&o6), PRINT, json!({"i": {"runId": run_id}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    // a building of another project
    let other: String = sqlx::query_scalar(
        "SELECT b.id::text FROM buildings b JOIN projects p ON p.id = b.project_id WHERE p.code <> 'JCHY' LIMIT 1",
    )
    .fetch_one(&s.db)
    .await
    .unwrap();
    let r = s.gql(Some(&finance), PRINT, json!({"i": {"runId": run_id, "buildingIds": [other]}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "buildingIds"), "{r}");

    let i = json!({"i": {"runId": run_id, "clientMutationId": "print-1"}});
    let p = s.ok(Some(&finance), PRINT, i.clone()).await["printBillRun"]["billPrint"].clone();
    assert!(p["url"].is_null());
    // a retry: the same print
    let again = s.ok(Some(&finance), PRINT, i).await["printBillRun"]["billPrint"].clone();
    assert_eq!(again["id"], p["id"]);
    let done = wait_done(&s, &finance, &p["id"]).await;
    assert_eq!(done["status"], "DONE", "{done}");
    assert_eq!((done["pages"].as_i64(), done["rendered"].as_i64()), (Some(2), Some(2)));
    let pdf = download(&s, done["url"].as_str().unwrap(), "run").await;
    assert_eq!(pages_of(&pdf), 2, "one page a bill");
    let text = text_of(&pdf);
    assert_eq!(text.matches("缴费通知单").count(), 2, "{text}");
    let _ = std::fs::remove_file(&pdf);
    assert_eq!(s.scalar("SELECT count(*) FROM bill_prints").await, 1);
}

#[tokio::test]
async fn a_renderer_whose_lease_ran_out_writes_nothing() {
    use wuye_api::billing::print::repo;
    let s = TestServer::seeded().await;
    let b = bills(&s).await;
    let finance = s.sign_in("finance1").await;
    let run = s.ok(Some(&finance), BILL, json!({"id": b.six[1]})).await["bill"]["runId"].clone();
    // a print nobody has taken yet (inserted directly: the server would render it at once)
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO bill_prints (id, company_id, run_id, building_ids, status, requested_by, created_at)
         SELECT $1, r.company_id, r.id, '{}', 'queued', r.created_by, now() FROM bill_runs r WHERE r.id = $2::uuid",
    )
    .bind(id)
    .bind(run.as_str().unwrap())
    .execute(&s.db)
    .await
    .unwrap();
    let now = s.clock_now();
    let lease = chrono::TimeDelta::seconds(120);
    let first = repo::claim(&s.db, now, now + lease, 3).await.unwrap().expect("the print is claimed");
    assert_eq!(first.id, id);
    assert!(repo::claim(&s.db, now, now + lease, 3).await.unwrap().is_none(), "held while leased");
    // the first renderer stalls past its lease; another takes the print over
    let later = now + lease + chrono::TimeDelta::seconds(1);
    let second = repo::claim(&s.db, later, later + lease, 3).await.unwrap().expect("taken over");
    assert_ne!(first.attempts, second.attempts);
    // the stalled one's progress and result are refused
    assert!(!repo::progress(&s.db, id, first.attempts, 2, 1, later + lease).await.unwrap());
    repo::finish(&s.db, id, first.attempts, None, Some("stale"), later).await.unwrap();
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM bill_prints WHERE id = $1").bind(id).fetch_one(&s.db).await.unwrap();
    assert_eq!((status.as_str(), error), ("rendering", None));
    assert!(repo::progress(&s.db, id, second.attempts, 2, 1, later + lease).await.unwrap());
}

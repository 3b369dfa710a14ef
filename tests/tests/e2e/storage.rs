//! Files in an S3-compatible bucket shared by the replicas: moto's server from PyPI
//! (`tests/fakes/s3.py`) with AWS Signature Version 4 checked on every request. A photo
//! uploaded through one replica is served by another through a signed URL that expires;
//! the bucket refuses requests signed with the wrong secret.

use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use wuye_api::kit::config::{StorageBackend, StorageConfig};
use wuye_api::kit::storage::Storage;
use wuye_tests::TestServer;

struct FakeS3 {
    child: Child,
    config: StorageConfig,
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh fake S3 with one bucket and one access key.
fn fake_s3() -> FakeS3 {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fakes/s3.py");
    let mut child = Command::new("python3")
        .args([script, &port.to_string(), "wuye-files"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with moto (deploy/test.sh installs it)");
    let stdout = child.stdout.take().unwrap();
    let mut ready = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            ready = Some(v);
            break;
        }
    }
    let v = ready.expect("the fake S3 started (pip install 'moto[server]')");
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let config = StorageConfig {
        backend: StorageBackend::S3,
        endpoint: Some(s("endpoint")),
        bucket: s("bucket"),
        region: s("region"),
        access_key_id: Some(s("access_key_id")),
        secret_access_key: Some(s("secret_access_key").into()),
        allow_http: true,
        ..StorageConfig::default()
    };
    FakeS3 { child, config }
}

/// A private file is streamed whole or by one byte range (players seek in videos).
async fn ranges_are_served(s: &TestServer, url: &str, whole: &[u8]) {
    let get = |range: Option<&'static str>| {
        let mut req = s.http.get(format!("{}{url}", s.url));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        req.send()
    };
    let len = whole.len();
    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), whole);
    let r = get(Some("bytes=0-2")).await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 0-2/{len}").as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &whole[..3]);
    let r = get(Some("bytes=-4")).await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes {}-{}/{len}", len - 4, len - 1).as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &whole[len - 4..]);
    let r = get(Some("bytes=5-")).await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &whole[5..]);
    // past the end: 416 naming the size; several ranges: the whole file
    let r = s.http.get(format!("{}{url}", s.url)).header("range", format!("bytes={len}-")).send().await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], format!("bytes */{len}").as_str());
    let r = get(Some("bytes=0-1,4-5")).await.unwrap();
    assert_eq!((r.status().as_u16(), r.bytes().await.unwrap().len()), (200, len));
}

#[tokio::test]
async fn private_files_stream_by_range_from_the_local_folder() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let (key, url) = s.upload_photo(&admin, "WORK_ORDER").await;
    let whole = std::fs::read(s.state.config.storage_dir.join(&key)).unwrap();
    assert!(whole.len() > 8);
    ranges_are_served(&s, &url, &whole).await;
}

#[tokio::test]
async fn replicas_share_the_bucket_and_signed_urls_expire() {
    let s3 = fake_s3();
    let bucket = s3.config.clone();
    let a = TestServer::seeded_with(|c| c.storage = bucket).await;
    let b = a.replica().await;
    // B's own folder is empty: only the bucket can serve what A stored
    assert_ne!(a.state.config.storage_dir, b.state.config.storage_dir);
    let admin = a.sign_in("admin").await;
    let (key, url) = a.upload_photo(&admin, "WORK_ORDER").await;
    assert!(key.starts_with("private/"), "{key}");
    assert!(!b.state.config.storage_dir.join(&key).exists() && !a.state.config.storage_dir.join(&key).exists());
    let fetched = b.http.get(format!("{}{url}", b.url)).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    let bytes = fetched.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "the photo as uploaded");
    // the object is in the bucket, under its key
    let direct = Storage::from_config(&b.state.config.storage_dir, &s3.config).unwrap();
    assert_eq!(direct.get(&key).await.unwrap().unwrap(), bytes.to_vec());
    // streamed from the bucket by range (ranged GETs, signed like the rest)
    ranges_are_served(&b, &url, &bytes).await;
    // a tampered signature, and the same URL once it expired
    let tampered = url.replace("sig=", "sig=0");
    assert_eq!(b.http.get(format!("{}{tampered}", b.url)).send().await.unwrap().status(), 404);
    b.advance(wuye_api::files::service::URL_SECS + 1);
    assert_eq!(b.http.get(format!("{}{url}", b.url)).send().await.unwrap().status(), 410);

    // the bucket checks signatures: the right key id with the wrong secret is refused
    let mut forged = s3.config.clone();
    forged.secret_access_key = Some("wrong-secret-wrong-secret-wrong-secret-00".to_owned().into());
    let bad = Storage::from_config(&b.state.config.storage_dir, &forged).unwrap();
    let err = bad.get(&key).await.unwrap_err().to_string();
    assert!(err.contains("SignatureDoesNotMatch") || err.contains("403"), "{err}");
    assert!(bad.put("private/x/forged.jpg", b"x").await.is_err());
    assert!(direct.get("private/x/forged.jpg").await.unwrap().is_none(), "nothing was written");
    // deleting is idempotent; a key that is not ours is refused before any request
    direct.delete(&key).await.unwrap();
    direct.delete(&key).await.unwrap();
    assert!(direct.get(&key).await.unwrap().is_none());
    assert!(direct.get("../etc/passwd").await.is_err());
}

#[tokio::test]
async fn a_bucket_without_credentials_is_a_startup_error() {
    let c = StorageConfig { backend: StorageBackend::S3, ..StorageConfig::default() };
    let err = Storage::from_config(std::path::Path::new("/tmp"), &c).err().unwrap().to_string();
    assert!(err.contains("access_key_id"), "{err}");
}

/// What the bucket holds, asked through the S3 API with the server's own key: each
/// object's key and ETag, and how many multipart uploads were begun and neither completed
/// nor aborted.
fn bucket_listing(c: &StorageConfig) -> Value {
    use secrecy::ExposeSecret;
    let script = r#"
import boto3, json, sys
e, b, r, k, s = sys.argv[1:]
c = boto3.client("s3", endpoint_url=e, region_name=r, aws_access_key_id=k, aws_secret_access_key=s)
objects = c.list_objects_v2(Bucket=b).get("Contents", [])
print(json.dumps({"keys": [o["Key"] for o in objects], "etags": [o["ETag"] for o in objects],
                  "uploads": len(c.list_multipart_uploads(Bucket=b).get("Uploads", []))}))
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            c.endpoint.as_deref().unwrap(),
            &c.bucket,
            &c.region,
            c.access_key_id.as_deref().unwrap(),
            c.secret_access_key.as_ref().unwrap().expose_secret(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect()
}

/// The object keys, and the multipart uploads left open.
fn bucket_contents(c: &StorageConfig) -> (Vec<String>, usize) {
    let v = bucket_listing(c);
    (strings(&v["keys"]), v["uploads"].as_u64().unwrap() as usize)
}

/// The ETag of each object in the bucket, in key order.
fn etags(c: &StorageConfig) -> Vec<String> {
    strings(&bucket_listing(c)["etags"])
}

const MIB: usize = 1024 * 1024;

/// An MP4-looking body of `len` bytes that is not all zeros (parts must join in order).
fn video(len: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypmp42".to_vec();
    v.extend((0..len - v.len()).map(|i| (i % 251) as u8));
    v
}

/// A course the manager may add materials to; returns the manager's token and its id.
async fn course(s: &TestServer) -> (String, String) {
    let manager = s.sign_in("manager").await;
    let estate: String =
        sqlx::query_scalar("SELECT id::text FROM projects WHERE code = 'JCHY'").fetch_one(&s.db).await.unwrap();
    let save = "mutation($i: SaveCourseInput!) { saveCourse(input: $i) { course { id } } }";
    let c =
        json!({"projectId": estate, "title": "消防设施操作", "content": "消防水泵与报警主机", "audience": "维修人员"});
    let id =
        s.ok(Some(&manager), save, json!({"i": c})).await["saveCourse"]["course"]["id"].as_str().unwrap().to_owned();
    (manager, id)
}

/// Posts a material; `chunks` are sent as a streamed body without a length, ending in a
/// broken connection when `break_off`.
async fn send_material(
    s: &TestServer,
    token: &str,
    course: &str,
    body: Vec<u8>,
    streamed: bool,
    break_off: bool,
) -> (u16, Value) {
    let url = format!("{}/training/courses/{course}/materials?name=video", s.url);
    let req = reqwest::Client::new().post(url).bearer_auth(token);
    let req = if streamed {
        let mut chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
        if break_off {
            chunks.push(Err(std::io::Error::other("signal lost")));
        }
        req.body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
    } else {
        req.body(body)
    };
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

async fn materials(s: &TestServer) -> i64 {
    s.scalar("SELECT count(*) FROM course_materials").await
}

#[tokio::test]
async fn course_videos_stream_into_the_bucket_in_parts() {
    let s3 = fake_s3();
    let bucket = s3.config.clone();
    let a = TestServer::seeded_with(|c| {
        c.storage = bucket;
        c.training.max_video_bytes = 12 * MIB;
    })
    .await;
    let b = a.replica().await;
    let (manager, id) = course(&a).await;
    // 11 MB in three parts (5 + 5 + 1), sent without a length
    let whole = video(11 * MIB);
    let (status, m) = send_material(&a, &manager, &id, whole.clone(), true, false).await;
    assert_eq!((status, m["sizeBytes"].as_u64()), (201, Some(whole.len() as u64)), "{m}");
    let (keys, uploads) = bucket_contents(&s3.config);
    assert_eq!((keys.len(), uploads), (1, 0), "one object, no upload left open: {keys:?}");
    // S3 tags an object completed from parts with their count (`"<md5 of md5s>-3"`)
    assert!(etags(&s3.config)[0].ends_with("-3\""), "a multipart upload of three parts: {:?}", etags(&s3.config));
    assert!(keys[0].starts_with("private/") && keys[0].ends_with(".mp4"), "{keys:?}");
    // another replica serves it whole and by range, byte for byte
    let get = "query($i: ID!) { course(id: $i) { materials { url sizeBytes } } }";
    let url =
        b.ok(Some(&manager), get, json!({"i": id})).await["course"]["materials"][0]["url"].as_str().unwrap().to_owned();
    ranges_are_served(&b, &url, &whole).await;

    // over the limit without a length: refused, the multipart upload aborted, no row
    let (status, r) = send_material(&a, &manager, &id, video(13 * MIB), true, false).await;
    assert_eq!((status, r["code"].as_str(), r["field"].as_str()), (400, Some("VALIDATION"), Some("file")), "{r}");
    assert_eq!(bucket_contents(&s3.config), (keys.clone(), 0), "nothing kept of the refused video");
    // over the limit with a length: refused before a byte is read (by its size, though
    // its first bytes are not a video's)
    let mut page = b"<html>".to_vec();
    page.resize(21 * MIB, b' ');
    let (status, r) = send_material(&a, &manager, &id, page, false, false).await;
    assert_eq!((status, r["field"].as_str()), (400, Some("file")), "{r}");
    // (the larger of the two kinds' limits: 20 MB for a PDF)
    assert!(r["message"].as_str().unwrap().contains("20MB"), "refused for its length: {r}");
    // the phone loses signal after 7 MB: nothing kept either
    let (status, _) = send_material(&a, &manager, &id, video(7 * MIB), true, true).await;
    assert_ne!(status, 201);
    let mut left = bucket_contents(&s3.config);
    for _ in 0..50 {
        if left.1 == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = bucket_contents(&s3.config);
    }
    assert_eq!(left, (keys, 0), "the broken-off upload was aborted");
    assert_eq!(materials(&a).await, 1);
    assert_eq!(a.scalar("SELECT count(*) FROM files WHERE purpose = 'training'").await, 1);
}

#[tokio::test]
async fn course_videos_stream_to_the_folder_and_leave_nothing_when_refused() {
    let s = TestServer::seeded_with(|c| c.training.max_video_bytes = 3 * MIB).await;
    let (manager, id) = course(&s).await;
    let whole = video(2 * MIB + 17);
    let (status, m) = send_material(&s, &manager, &id, whole.clone(), true, false).await;
    assert_eq!(status, 201, "{m}");
    let (status, r) = send_material(&s, &manager, &id, video(4 * MIB), true, false).await;
    assert_eq!((status, r["field"].as_str()), (400, Some("file")), "{r}");
    let (status, _) = send_material(&s, &manager, &id, video(MIB), true, true).await;
    assert_ne!(status, 201);
    // one file, whole, and no temporary file of the refused or broken-off ones
    let files = |dir: std::path::PathBuf| -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    todo.push(e.path());
                } else if e.path().to_string_lossy().contains("/training/") {
                    out.push(e.path());
                }
            }
        }
        out
    };
    let mut found = files(s.state.config.storage_dir.clone());
    for _ in 0..50 {
        if found.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        found = files(s.state.config.storage_dir.clone());
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(std::fs::read(&found[0]).unwrap(), whole);
    assert_eq!(materials(&s).await, 1);
}

//! Files in an S3-compatible bucket shared by the replicas: moto's server from PyPI
//! (`tests/fakes/s3.py`) with AWS Signature Version 4 checked on every request. A photo
//! uploaded through one replica is served by another through a signed URL that expires;
//! the bucket refuses requests signed with the wrong secret.

use std::process::{Child, Command, Stdio};

use serde_json::Value;
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

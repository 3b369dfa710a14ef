//! Object storage behind one small type: a local folder (development, one replica) or an
//! S3-compatible bucket through `object_store` (Aliyun OSS, Tencent COS, MinIO, AWS), which
//! every replica shares. The bucket is private: people get files through the API's signed,
//! expiring URLs, which any replica serves.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::kit::config::{StorageBackend, StorageConfig};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid object key")]
    BadKey,
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store: {0}")]
    Remote(#[from] object_store::Error),
    #[error("storage configuration: {0}")]
    Config(&'static str),
}

pub enum Storage {
    Local { root: PathBuf },
    Bucket { store: Arc<dyn ObjectStore> },
}

/// An object being read: its bytes arrive in chunks, never held whole (a 200 MB course
/// video costs a chunk of memory per reader, and a phone's player may ask for a range).
pub struct Reading {
    /// the whole object's size
    pub size: u64,
    /// the bytes this reading yields
    pub range: Range<u64>,
    pub body: BoxStream<'static, Result<Bytes, StorageError>>,
}

/// Chunks of a local file read from its current position, `left` bytes in all.
fn file_chunks(file: tokio::fs::File, left: u64) -> BoxStream<'static, Result<Bytes, StorageError>> {
    const CHUNK: u64 = 64 * 1024;
    futures_util::stream::try_unfold((file, left), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; left.min(CHUNK) as usize];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            // the file shrank under us: end the body short rather than pad it
            return Err(StorageError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, left - n as u64))))
    })
    .boxed()
}

/// An object written piece by piece as its bytes arrive (a course video is never held
/// whole): it appears under its key on `finish`, or not at all. `abort` (or dropping it)
/// throws away what was written: a local temporary file is removed, a bucket's multipart
/// upload is aborted (a replica killed mid-upload leaves parts the bucket's lifecycle
/// rule removes; see the runbook).
pub struct Upload(Option<Writing>);

enum Writing {
    Local { file: tokio::fs::File, tmp: PathBuf, path: PathBuf },
    Bucket { parts: WriteMultipart },
}

/// S3's smallest part but the last.
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts in flight per upload: memory is bounded by this many parts.
const PARTS_IN_FLIGHT: usize = 2;

impl Upload {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        match &mut self.0 {
            Some(Writing::Local { file, .. }) => file.write_all(chunk).await?,
            Some(Writing::Bucket { parts }) => {
                parts.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                parts.write(chunk);
            }
            None => return Err(StorageError::Io(std::io::ErrorKind::BrokenPipe.into())),
        }
        Ok(())
    }

    pub async fn finish(mut self) -> Result<(), StorageError> {
        match self.0.take() {
            Some(Writing::Local { mut file, tmp, path }) => {
                let done = async {
                    file.flush().await?;
                    file.sync_all().await?;
                    drop(file);
                    tokio::fs::rename(&tmp, &path).await
                }
                .await;
                if done.is_err() {
                    let _ = tokio::fs::remove_file(&tmp).await;
                }
                done?;
            }
            Some(Writing::Bucket { parts }) => {
                parts.finish().await?;
            }
            None => return Err(StorageError::Io(std::io::ErrorKind::BrokenPipe.into())),
        }
        Ok(())
    }

    pub async fn abort(mut self) {
        match self.0.take() {
            Some(Writing::Local { file, tmp, .. }) => {
                drop(file);
                if let Err(e) = tokio::fs::remove_file(&tmp).await {
                    tracing::warn!(path = %tmp.display(), error = %e, "an aborted upload's file was not removed");
                }
            }
            Some(Writing::Bucket { parts }) => {
                if let Err(e) = parts.abort().await {
                    tracing::warn!(error = %e, "an aborted multipart upload was not aborted in the bucket");
                }
            }
            None => {}
        }
    }
}

impl Drop for Upload {
    /// The request went away mid-upload (the phone lost signal): nothing is kept.
    fn drop(&mut self) {
        match self.0.take() {
            Some(Writing::Local { tmp, .. }) => {
                let _ = std::fs::remove_file(tmp);
            }
            Some(Writing::Bucket { parts }) => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = parts.abort().await;
                    });
                }
            }
            None => {}
        }
    }
}

impl Storage {
    pub fn local(root: impl AsRef<Path>) -> Self {
        Storage::Local { root: root.as_ref().to_path_buf() }
    }

    /// The storage the configuration names: `storage_dir`, or the bucket of `storage`.
    pub fn from_config(dir: &Path, c: &StorageConfig) -> Result<Self, StorageError> {
        match c.backend {
            StorageBackend::Local => Ok(Storage::local(dir)),
            StorageBackend::S3 => {
                let (Some(id), Some(secret)) = (&c.access_key_id, &c.secret_access_key) else {
                    return Err(StorageError::Config(
                        "storage.access_key_id and storage.secret_access_key are required",
                    ));
                };
                if c.bucket.is_empty() {
                    return Err(StorageError::Config("storage.bucket is required"));
                }
                let options = object_store::ClientOptions::new()
                    .with_allow_http(c.allow_http)
                    .with_timeout(Duration::from_secs(c.timeout_secs))
                    .with_connect_timeout(Duration::from_secs(5));
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&c.bucket)
                    .with_region(&c.region)
                    .with_access_key_id(id)
                    .with_secret_access_key(secret.expose_secret())
                    .with_virtual_hosted_style_request(c.virtual_hosted_style)
                    .with_client_options(options);
                if let Some(e) = &c.endpoint {
                    b = b.with_endpoint(e);
                }
                Ok(Storage::Bucket { store: Arc::new(b.build()?) })
            }
        }
    }

    fn checked(key: &str) -> Result<&str, StorageError> {
        let ok = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        if ok { Ok(key) } else { Err(StorageError::BadKey) }
    }

    /// Keys are ours (`company-logos/<uuid>.png`), never a client's path: no `..`, no absolute paths.
    fn path(root: &Path, key: &str) -> Result<PathBuf, StorageError> {
        Ok(root.join(Self::checked(key)?))
    }

    fn object(key: &str) -> Result<object_store::path::Path, StorageError> {
        Ok(object_store::path::Path::from(Self::checked(key)?))
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let root = match self {
            Storage::Local { root } => root,
            Storage::Bucket { store } => {
                // one PUT: the object appears whole or not at all
                store.put(&Self::object(key)?, bytes.to_vec().into()).await?;
                return Ok(());
            }
        };
        let path = Self::path(root, key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // write then rename, so a reader never sees half a file
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::now_v7()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    /// Starts writing an object whose size is not known up front (see `Upload`).
    pub async fn upload(&self, key: &str) -> Result<Upload, StorageError> {
        let root = match self {
            Storage::Local { root } => root,
            Storage::Bucket { store } => {
                let upload = store.put_multipart(&Self::object(key)?).await?;
                return Ok(Upload(Some(Writing::Bucket {
                    parts: WriteMultipart::new_with_chunk_size(upload, PART_BYTES),
                })));
            }
        };
        let path = Self::path(root, key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::now_v7()));
        let file = tokio::fs::File::create(&tmp).await?;
        Ok(Upload(Some(Writing::Local { file, tmp, path })))
    }

    /// Removes an object; one that is not there is fine.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let root = match self {
            Storage::Local { root } => root,
            Storage::Bucket { store } => {
                return match store.delete(&Self::object(key)?).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                };
            }
        };
        match tokio::fs::remove_file(Self::path(root, key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads an object as a stream: whole, or the bytes of `range` (within the object: the
    /// caller resolved it against the object's size). `None`: no such object.
    pub async fn open(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<Reading>, StorageError> {
        let root = match self {
            Storage::Local { root } => root,
            Storage::Bucket { store } => {
                let opts = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
                return match store.get_opts(&Self::object(key)?, opts).await {
                    Ok(got) => Ok(Some(Reading {
                        size: got.meta.size,
                        range: got.range.clone(),
                        body: got.into_stream().map_err(StorageError::from).boxed(),
                    })),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                };
            }
        };
        let mut file = match tokio::fs::File::open(Self::path(root, key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        let range = range.unwrap_or(0..size);
        if range.start > range.end || range.end > size {
            return Err(StorageError::Io(std::io::ErrorKind::InvalidInput.into()));
        }
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
        let body = file_chunks(file, range.end - range.start);
        Ok(Some(Reading { size, range, body }))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let root = match self {
            Storage::Local { root } => root,
            Storage::Bucket { store } => {
                return match store.get(&Self::object(key)?).await {
                    Ok(r) => Ok(Some(r.bytes().await?.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                };
            }
        };
        let path = Self::path(root, key)?;
        match tokio::fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The image types accepted for logos, recognised by their first bytes, not by the name.
pub fn sniff_image(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        let root = Path::new("/tmp/x");
        assert!(Storage::path(root, "../etc/passwd").is_err());
        assert!(Storage::path(root, "/etc/passwd").is_err());
        assert!(Storage::path(root, "a//b").is_err());
        assert!(Storage::path(root, "company-logos/0190.png").is_ok());
        // the bucket's keys pass the same check
        assert!(Storage::object("../etc/passwd").is_err());
        assert_eq!(Storage::object("private/a/b.jpg").map(|p| p.to_string()).ok().as_deref(), Some("private/a/b.jpg"));
    }

    #[test]
    fn sniffs() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest").map(|t| t.1), Some("png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]).map(|t| t.1), Some("jpg"));
        assert_eq!(sniff_image(b"GIF89a"), None);
    }
}

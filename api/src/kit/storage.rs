//! Object storage behind one small type: a local folder by default; an S3-compatible
//! bucket (OSS/MinIO) can sit behind the same calls.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid object key")]
    BadKey,
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
}

pub enum Storage {
    Local { root: PathBuf },
}

impl Storage {
    pub fn local(root: impl AsRef<Path>) -> Self {
        Storage::Local { root: root.as_ref().to_path_buf() }
    }

    /// Keys are ours (`company-logos/<uuid>.png`), never a client's path: no `..`, no absolute paths.
    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        let ok = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        if !ok {
            return Err(StorageError::BadKey);
        }
        match self {
            Storage::Local { root } => Ok(root.join(key)),
        }
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // write then rename, so a reader never sees half a file
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::now_v7()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    /// Removes an object; one that is not there is fine.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.path(key)?;
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
        let s = Storage::local("/tmp/x");
        assert!(s.path("../etc/passwd").is_err());
        assert!(s.path("/etc/passwd").is_err());
        assert!(s.path("a//b").is_err());
        assert!(s.path("company-logos/0190.png").is_ok());
    }

    #[test]
    fn sniffs() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest").map(|t| t.1), Some("png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]).map(|t| t.1), Some("jpg"));
        assert_eq!(sniff_image(b"GIF89a"), None);
    }
}

//! Bundles archived in Redis, content-addressed, so a node on another machine can run a job's
//! executors without a shared folder: `{ns}:bundle:{digest}` is a hash of `f:<path>` (file
//! bytes) and `x:<path>` (present when the file is executable).

use redis::AsyncCommands;

use super::{Store, StoreError};

/// One payload file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Relative to `payloads/`, `/`-separated.
    pub path: String,
    pub bytes: Vec<u8>,
    pub executable: bool,
}

impl Store {
    fn bundle_key(&self, digest: &str) -> String {
        format!("{}:bundle:{digest}", self.keys().namespace())
    }

    /// Whether the bundle `digest` is archived.
    pub async fn has_bundle(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(self.conn().exists(self.bundle_key(digest)).await?)
    }

    /// Archives a bundle's files under its digest (all fields in one HSET, so a reader sees
    /// all of it or none).
    pub async fn put_bundle(&self, digest: &str, files: &[BundleFile]) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.bundle_key(digest));
        // A bundle without payload files still needs a field for the key to exist.
        cmd.arg("m:files").arg(files.len());
        for f in files {
            cmd.arg(format!("f:{}", f.path)).arg(&f.bytes);
            if f.executable {
                cmd.arg(format!("x:{}", f.path)).arg(1);
            }
        }
        let _: i64 = cmd.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// The files of an archived bundle, `None` if it is not archived.
    pub async fn bundle_files(&self, digest: &str) -> Result<Option<Vec<BundleFile>>, StoreError> {
        let map: std::collections::HashMap<String, Vec<u8>> =
            self.conn().hgetall(self.bundle_key(digest)).await?;
        if map.is_empty() {
            return Ok(None);
        }
        let mut files: Vec<BundleFile> = map
            .iter()
            .filter_map(|(k, v)| {
                let path = k.strip_prefix("f:")?;
                Some(BundleFile {
                    path: path.to_string(),
                    bytes: v.clone(),
                    executable: map.contains_key(&format!("x:{path}")),
                })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Some(files))
    }
}

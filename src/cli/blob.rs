//! `mirror-neuron blob get <sha256> [-o FILE]`: the bytes of a blob reference
//! (`{"$blob": {"sha256": ...}}`). In process it reads this machine's store, else asks the node
//! holding it through Redis; with `--target` it reads the server's `GetBlob` page by page.
//! Either way the bytes are checked against the digest before they are written.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::remote::{connect, failed};
use crate::api::pb::blobs::GetBlobRequest;
use crate::runtime::Backend;
use crate::runtime::blobs::{BlobStore, fetch, is_digest};

#[derive(Debug, clap::Subcommand)]
pub enum BlobCmd {
    /// Write a blob's bytes to stdout, or to a file with -o.
    Get {
        /// The blob's lower-case hex SHA-256 (a reference's "$blob".sha256).
        sha256: String,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

pub async fn run(target: Option<&str>, cmd: BlobCmd) -> anyhow::Result<i32> {
    let BlobCmd::Get { sha256, output } = cmd;
    if !is_digest(&sha256) {
        anyhow::bail!("sha256 {sha256:?} is not a lower-case hex SHA-256 digest");
    }
    let mut out = Output::open(output.as_deref())?;
    match target {
        Some(t) => remote(t, &sha256, &mut out).await?,
        None => {
            let backend = Backend::open().await?;
            let got = fetch(&backend.store, &BlobStore::from_env(), &sha256).await;
            backend.close().await;
            out.write(&got?)?;
        }
    }
    out.finish(&sha256)?;
    Ok(0)
}

/// Reads the blob page by page (each page bounded by the server).
async fn remote(target: &str, sha256: &str, out: &mut Output) -> anyhow::Result<()> {
    let mut client = connect(target).await?;
    let mut offset = 0u64;
    loop {
        let page = client
            .blobs
            .get_blob(GetBlobRequest {
                sha256: sha256.to_string(),
                offset,
                length: 0,
            })
            .await
            .map_err(failed)?
            .into_inner();
        out.write(&page.data)?;
        offset += page.data.len() as u64;
        if page.eof || page.data.is_empty() {
            return Ok(());
        }
    }
}

/// Where the bytes go, hashed on the way so a wrong blob never passes silently. A file is
/// written beside its target and renamed into place only once the digest matched.
struct Output {
    hasher: Sha256,
    sink: Sink,
}

enum Sink {
    Stdout(std::io::Stdout),
    File {
        tmp: PathBuf,
        target: PathBuf,
        file: std::fs::File,
    },
}

impl Output {
    fn open(path: Option<&Path>) -> anyhow::Result<Output> {
        let sink = match path {
            None => Sink::Stdout(std::io::stdout()),
            Some(p) => {
                let tmp = p.with_extension(format!("{}.part", std::process::id()));
                let file = std::fs::File::create(&tmp)
                    .map_err(|e| anyhow::anyhow!("-o {}: {e}", p.display()))?;
                Sink::File {
                    tmp,
                    target: p.to_path_buf(),
                    file,
                }
            }
        };
        Ok(Output {
            hasher: Sha256::new(),
            sink,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.hasher.update(bytes);
        match &mut self.sink {
            Sink::Stdout(s) => s.write_all(bytes)?,
            Sink::File { file, .. } => file.write_all(bytes)?,
        }
        Ok(())
    }

    fn finish(self, sha256: &str) -> anyhow::Result<()> {
        let actual = hex::encode(self.hasher.finalize());
        match self.sink {
            Sink::Stdout(mut s) => {
                s.flush()?;
                anyhow::ensure!(
                    actual == sha256,
                    "blob {sha256}: the bytes received hash to {actual}"
                );
            }
            Sink::File { tmp, target, file } => {
                drop(file);
                if actual != sha256 {
                    let _ = std::fs::remove_file(&tmp);
                    anyhow::bail!(
                        "blob {sha256}: the bytes received hash to {actual}; nothing written"
                    );
                }
                std::fs::rename(&tmp, &target)
                    .map_err(|e| anyhow::anyhow!("-o {}: {e}", target.display()))?;
            }
        }
        Ok(())
    }
}

//! The step's environment, handed to the engine in a file (`--env-file`).
//!
//! Not `--env NAME=value`: values (API keys) would be on a command line every local user can
//! read in `ps`. Not `--env NAME` with the values in the CLI's own environment either: the
//! CLI (podman runs as root on many nodes) would then run with variables a manifest chose:
//! `LD_PRELOAD`, `CONTAINERS_CONF`, `DOCKER_CONFIG`, `PATH`. So the CLI gets the host's own
//! minimal environment, and the step's variables go through a file only the runner's user can
//! read (0600), next to the run directory (not inside it, so the step does not see it among
//! its files), removed when the step ends.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An env file, removed when dropped.
#[derive(Debug)]
pub struct EnvFile {
    path: PathBuf,
}

impl EnvFile {
    /// Writes `vars` to `<run_dir>.env`. A value with a line break cannot be carried (the
    /// format is one `NAME=value` per line), so it is refused naming the variable.
    pub fn write(run_dir: &Path, vars: &[(String, String)]) -> Result<EnvFile, String> {
        let mut text = String::new();
        for (name, value) in vars {
            if value.contains('\n') || value.contains('\r') {
                return Err(format!(
                    "environment variable {name} has a line break, which the container runner \
                     cannot pass to the step (its env file holds one NAME=value per line)"
                ));
            }
            text.push_str(name);
            text.push('=');
            text.push_str(value);
            text.push('\n');
        }
        let mut path = run_dir.as_os_str().to_owned();
        path.push(".env");
        let path = PathBuf::from(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        // From here on the file is ours to remove, whatever happens.
        let env_file = EnvFile { path };
        file.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", env_file.path.display()))?;
        Ok(env_file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for EnvFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %self.path.display(), error = %e, "could not remove a step's env file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_the_owner_reads_it_and_it_goes_with_the_step() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run_dir = dir.path().join("run1");
        let vars = vec![
            ("API_KEY".to_string(), "s3cr3t = x ".to_string()),
            ("EMPTY".to_string(), String::new()),
        ];
        let file = EnvFile::write(&run_dir, &vars).expect("written");
        let path = file.path().to_path_buf();
        assert_eq!(path, dir.path().join("run1.env"));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "API_KEY=s3cr3t = x \nEMPTY=\n"
        );
        drop(file);
        assert!(!path.exists());
        let e = EnvFile::write(&run_dir, &[("A".into(), "x\ny".into())]).expect_err("refused");
        assert!(e.contains("A has a line break"), "{e}");
        assert!(!path.exists());
    }
}

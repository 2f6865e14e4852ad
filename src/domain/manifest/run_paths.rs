//! Paths inside an executor's run directory (`workdir`, upload targets). Pure and lexical: the
//! run directory only ever holds copied regular files and directories, never symlinks, so
//! refusing absolute paths and `..` is enough to keep a manifest inside it. The bundle check
//! and the runner share these functions, so `validate` refuses exactly what a run would.

use std::path::{Component, Path, PathBuf};

/// Absolute prefix that sandbox manifests use for the job directory; on the host it means the run dir.
pub const SANDBOX_JOB_DIR: &str = "/sandbox/job";

/// Where the container runner mounts the run directory (the original's Docker workers used it).
pub const CONTAINER_JOB_DIR: &str = "/mn/job";

/// Maps `/sandbox/job/x` (and `/mn/job/x`) to `x` so one manifest serves every runner.
pub fn strip_sandbox_prefix(path: &str) -> &str {
    for prefix in [SANDBOX_JOB_DIR, CONTAINER_JOB_DIR] {
        match path.strip_prefix(prefix) {
            Some("") => return ".",
            Some(rest) if rest.starts_with('/') => return rest.trim_start_matches('/'),
            _ => {}
        }
    }
    path
}

/// A relative path made only of normal components (and `.`); `..`, roots and empties are refused.
pub fn confined_relative(path: &str, what: &str) -> Result<PathBuf, String> {
    if path.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(format!("{what} must be a relative path, got {path:?}"));
    }
    let mut clean = PathBuf::new();
    for component in p.components() {
        match component {
            Component::Normal(c) => clean.push(c),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{what} must not leave its directory, got {path:?}"));
            }
        }
    }
    Ok(clean)
}

/// A path in the run directory as the runner will use it (`/sandbox/job/x` → `x`).
pub fn run_dir_path(path: &str, what: &str) -> Result<PathBuf, String> {
    confined_relative(strip_sandbox_prefix(path), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths_map_into_the_run_dir_and_escapes_are_refused() {
        assert_eq!(run_dir_path("/sandbox/job", "w"), Ok(PathBuf::new()));
        assert_eq!(
            run_dir_path("/sandbox/job/a/./b", "w"),
            Ok(PathBuf::from("a/b"))
        );
        assert_eq!(run_dir_path("a", "w"), Ok(PathBuf::from("a")));
        for bad in ["../..", "a/../../b", "/etc", "/sandbox/jobs", ""] {
            assert!(run_dir_path(bad, "workdir").is_err(), "{bad}");
        }
        assert_eq!(
            run_dir_path("../..", "workdir"),
            Err("workdir must not leave its directory, got \"../..\"".to_string())
        );
    }
}

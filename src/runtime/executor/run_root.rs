//! Where this process puts its run directories, and clearing those of dead processes.
//!
//! Run directories are removed when their step ends, but not when the runtime is killed. Each
//! process therefore works in its own folder `<MN_TEMP_DIR>/mirror_neuron_rt_<pid>_<id>`, which
//! holds a `.lock` file the process keeps `flock`ed for its whole life. The kernel drops the
//! lock when the process dies, however it dies, so at start a runtime can tell a live sibling's
//! folder (lock held) from a dead one's (lock free) and remove the latter.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PREFIX: &str = "mirror_neuron_rt_";
const LOCK: &str = ".lock";

/// Folders this process claimed, by temp root, with the lock that keeps each claimed.
static CLAIMS: Mutex<Option<HashMap<PathBuf, (PathBuf, File)>>> = Mutex::new(None);

/// This process's run folder under `temp_root`, claimed (and dead siblings swept) on first use.
pub fn claimed(temp_root: &Path) -> Result<PathBuf, String> {
    let mut claims = CLAIMS.lock().unwrap_or_else(|p| p.into_inner());
    let claims = claims.get_or_insert_with(HashMap::new);
    if let Some((dir, _)) = claims.get(temp_root) {
        return Ok(dir.clone());
    }
    std::fs::create_dir_all(temp_root)
        .map_err(|e| format!("cannot create {}: {e}", temp_root.display()))?;
    let swept = sweep(temp_root);
    if swept > 0 {
        tracing::info!(
            root = %temp_root.display(),
            swept,
            "removed run directories left by runtimes that died"
        );
    }
    let (dir, lock) = claim(temp_root)
        .map_err(|e| format!("cannot claim a run folder in {}: {e}", temp_root.display()))?;
    claims.insert(temp_root.to_path_buf(), (dir.clone(), lock));
    Ok(dir)
}

/// Creates and locks a fresh folder. It is built under a hidden name and renamed into place
/// once locked, so a sweeper never sees one of ours without its lock.
fn claim(temp_root: &Path) -> std::io::Result<(PathBuf, File)> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{PREFIX}{}_{}", std::process::id(), &id[..12]);
    let building = temp_root.join(format!(".{name}"));
    std::fs::create_dir(&building)?;
    let lock = File::create(building.join(LOCK))?;
    if !try_lock(&lock) {
        return Err(std::io::Error::other("fresh lock already held"));
    }
    let dir = temp_root.join(name);
    std::fs::rename(&building, &dir)?;
    Ok((dir, lock))
}

/// Removes every sibling folder whose owner is gone; returns how many.
fn sweep(temp_root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(temp_root) else {
        return 0;
    };
    let mut swept = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(PREFIX)) {
            continue;
        }
        let dir = entry.path();
        // A folder without a readable lock cannot belong to a live runtime (ours are locked
        // before they get this name).
        let dead = match File::open(dir.join(LOCK)) {
            Ok(lock) => try_lock(&lock),
            Err(_) => true,
        };
        if dead && std::fs::remove_dir_all(&dir).is_ok() {
            swept += 1;
        }
    }
    swept
}

/// Takes an exclusive lock without waiting; false when another process holds it.
fn try_lock(file: &File) -> bool {
    // SAFETY: flock(2) on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_runtimes_folder_is_swept_and_a_live_one_kept() {
        let root = tempfile::tempdir().expect("tempdir");
        // A dead runtime: a folder whose lock nobody holds, with a leftover run inside.
        let dead = root.path().join(format!("{PREFIX}1_dead"));
        std::fs::create_dir_all(dead.join("mirror_neuron_host_local_x")).expect("mkdir");
        File::create(dead.join(LOCK)).expect("lock file");
        // A live one: locked by a descriptor held for the test (flock locks are per open file).
        let live = root.path().join(format!("{PREFIX}2_live"));
        std::fs::create_dir_all(&live).expect("mkdir");
        let held = File::create(live.join(LOCK)).expect("lock file");
        assert!(try_lock(&held));
        let unrelated = root.path().join("something_else");
        std::fs::create_dir_all(&unrelated).expect("mkdir");

        let mine = claimed(root.path()).expect("claims");
        assert!(!dead.exists(), "dead runtime's folder removed");
        assert!(live.exists(), "live runtime's folder kept");
        assert!(unrelated.exists(), "other folders untouched");
        assert!(mine.starts_with(root.path()) && mine.is_dir());
        assert_eq!(claimed(root.path()).expect("again"), mine, "claimed once");
        // Our own folder survives another sweep: we hold its lock.
        assert_eq!(sweep(root.path()), 0);
        assert!(mine.exists());
    }
}

//! The process tree under the supervisor, read from `/proc`, for the subreaper mode: there is
//! no kernel handle on "everything this step started", so the supervisor (to which orphans are
//! reparented) walks parent links down from itself and signals what it finds, until nothing is
//! left. A process forked between two walks is found by the next one; one that got SIGKILL
//! cannot fork again, so the loop ends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::signals::{reap_ready, send};

/// Live (non-zombie) descendants of `root`, nearest first.
pub fn of(root: libc::pid_t) -> Vec<libc::pid_t> {
    let mut children: HashMap<libc::pid_t, Vec<libc::pid_t>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if let Some((state, ppid)) = stat(pid)
            && state != 'Z'
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            found.push(c);
            queue.push(c);
        }
    }
    found
}

/// `(state, ppid)` from `/proc/<pid>/stat`. The command name may hold spaces and parentheses,
/// so fields are read after its last `)`.
fn stat(pid: libc::pid_t) -> Option<(char, libc::pid_t)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Sends `sig` to every live descendant of `root`.
pub fn signal_all(root: libc::pid_t, sig: libc::c_int) {
    for pid in of(root) {
        send(pid, sig);
    }
}

/// SIGKILLs the tree under `root` until none of it is left (or `limit` passes), reaping the
/// orphans that land on us. Returns the processes reaped on the way, which may include the
/// step's own main process.
pub fn kill_all(root: libc::pid_t, limit: Duration) -> Vec<(libc::pid_t, super::signals::Ended)> {
    let deadline = Instant::now() + limit;
    let mut reaped = Vec::new();
    loop {
        let live = of(root);
        reaped.extend(reap_ready());
        if live.is_empty() || Instant::now() >= deadline {
            return reaped;
        }
        for pid in live {
            send(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

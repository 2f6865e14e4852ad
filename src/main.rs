//! The `mirror-neuron` binary: logging setup, then the command line.

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MN_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal: a log file or a pipe gets plain text
    // (`NO_COLOR` turns them off on a terminal too).
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if mirror_neuron::config::var("MN_LOG_FORMAT").as_deref() == Some("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Dies quietly on a closed pipe (`mirror-neuron job list --json | head`), as Unix tools do,
/// instead of panicking in `println!`.
fn default_sigpipe() {
    // SAFETY: signal(2) changes the process-wide disposition of SIGPIPE only; nothing in this
    // program installs a SIGPIPE handler that this could break.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Caps glibc's malloc arenas. By default every thread that meets contention gets its own
/// arena (up to 8 per core), and memory a tokio worker freed in one arena is not reused by
/// another: a 10,000-message job left `serve` 25-40 MiB bigger for nothing. Two arenas keep
/// the allocator fast for our few busy threads and the footprint near the live heap.
fn cap_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return; // the operator chose
    }
    // SAFETY: mallopt(3) only tunes the allocator; called before any thread is started.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Runs this process as a step supervisor when asked (`mirror-neuron __contain ...`), before
/// anything else starts: the supervisor must stay single-threaded and quiet.
fn supervise_if_asked() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref()
        == Some(std::ffi::OsStr::new(
            mirror_neuron::runtime::containment::SUPERVISE_ARG,
        ))
    {
        let rest: Vec<std::ffi::OsString> = args.collect();
        mirror_neuron::runtime::containment::supervisor::main(&rest);
    }
}

/// Makes the runtime not dumpable: a step running as the same user cannot then read its
/// memory or environment (`/proc/<pid>/environ`, `/mem`, ptrace), which hold the gRPC tokens
/// and the Redis password. Steps running as root also lose the capabilities that bypass it (see
/// `containment::supervisor`), which is what would let them past this.
fn not_dumpable() {
    // SAFETY: prctl only sets a process attribute.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn main() {
    supervise_if_asked();
    not_dumpable();
    cap_malloc_arenas();
    default_sigpipe();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mirror-neuron: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(mirror_neuron::cli::run());
    std::process::exit(code);
}

//! The `mirror-neuron` binary: logging setup, then the command line.

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MN_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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

#[tokio::main]
async fn main() {
    default_sigpipe();
    init_tracing();
    let code = mirror_neuron::cli::run().await;
    std::process::exit(code);
}

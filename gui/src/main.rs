//! `tincan-gui`: the desktop app. Parses the flags, checks them (a typo is
//! reported on the terminal before any window opens), opens the window.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let options = tincan_gui::Options::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wgpu=warn,iced=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = options.check() {
        eprintln!("tincan-gui: {e}");
        return std::process::ExitCode::from(2);
    }
    match tincan_gui::run(options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tincan-gui: cannot open the window: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

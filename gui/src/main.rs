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
    #[cfg(all(unix, not(target_os = "macos")))]
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        eprintln!(
            "tincan-gui: no graphical session (neither DISPLAY nor WAYLAND_DISPLAY is set); \
             the `tincan` CLI works without one"
        );
        return std::process::ExitCode::from(2);
    }
    // winit panics when the display cannot be opened: say it in one line.
    match std::panic::catch_unwind(|| tincan_gui::run(options)) {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("tincan-gui: cannot open the window: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("tincan-gui: cannot open the window (see the error above)");
            std::process::ExitCode::FAILURE
        }
    }
}

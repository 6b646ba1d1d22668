//! `tincan`: the command-line client and daemon. Thin: every command is
//! either local (identity, config) or one control-socket request.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    quiet_on_a_closed_pipe();
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", tincan_core::report::one_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `tincan peers | head -1`: when the reader of our output goes away, stop
/// quietly as a Unix tool does (exit status 141, as killed by SIGPIPE)
/// instead of a panic with a backtrace. Rust ignores SIGPIPE, so a write
/// to the closed pipe fails and `println!` panics; restoring the signal
/// would take unsafe code.
fn quiet_on_a_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

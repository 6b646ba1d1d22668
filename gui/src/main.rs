//! `tincan-gui`: the desktop app. It only announces itself until the
//! desktop-app issue lands; the binary exists so the workspace layout is final.

fn main() {
    eprintln!(
        "tincan-gui {}: the desktop app is not built yet (protocol v{}); use the `tincan` CLI",
        env!("CARGO_PKG_VERSION"),
        tincan_core::wire::PROTOCOL_VERSION
    );
    std::process::exit(2);
}

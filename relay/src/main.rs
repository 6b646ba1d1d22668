//! `tincan-relay`: the internet relay. It only announces itself until the
//! relay issue lands; the binary exists so the workspace layout is final.

fn main() {
    eprintln!(
        "tincan-relay {}: the relay is not built yet (protocol v{})",
        env!("CARGO_PKG_VERSION"),
        tincan_core::wire::PROTOCOL_VERSION
    );
    std::process::exit(2);
}

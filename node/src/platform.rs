//! The few OS-specific bits, kept in one place so the node can be ported:
//! the OS user and machine names, LAN addresses, battery state. Writing
//! secret files lives in `tincan_transport::secret` (the relay writes its
//! key the same way) and is re-exported here.

pub use tincan_transport::secret::{restrict_dir, write_secret};

/// The OS user's name, for a first identity when none was given: the
/// environment first (so a terminal-server session can override it), then
/// the account database (whoami), then a neutral default.
pub fn os_user_name() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .or_else(|| Some(whoami::username()).filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "tincan user".to_string())
}

/// The display name a new identity is offered (`tincan init` without
/// `--name`): the OS user's full name where the system knows it (the
/// account's GECOS field on Unix), else the user name ([`os_user_name`]),
/// so that a colleague is not shown as `root` or `jdoe` when the machine
/// knows better. Always one [`crate::keystore::validate_name`] accepts.
pub fn default_display_name() -> String {
    whoami::fallible::realname()
        .ok()
        .and_then(|name| crate::keystore::validate_name(&name).ok())
        .or_else(|| crate::keystore::validate_name(&os_user_name()).ok())
        .unwrap_or_else(|| "tincan user".to_string())
}

/// A label for this device in `tincan device list`: the machine's name
/// (held to display-name rules), or a neutral default.
pub fn device_label() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| whoami::fallible::hostname().ok())
        .and_then(|name| crate::keystore::validate_name(&name).ok())
        .unwrap_or_else(|| "this device".to_string())
}

/// Most addresses [`lan_addrs`] gives: the relay refuses a registration
/// with more (`MAX_LAN_ADDRS` in tincan-relay), and IPv6 hosts easily
/// carry many (temporary privacy addresses, several prefixes).
const MAX_LAN_ADDRS: usize = 16;

/// The addresses this node can be reached at on its LANs (non-loopback
/// interface addresses with the listen port, in dial order), for the
/// relay's neighbour matching when multicast is blocked. A specific listen
/// address is the only one. `0.0.0.0` lists IPv4 addresses; `[::]` (one
/// dual-stack socket) lists IPv4 and then routable IPv6 ones, not IPv6
/// link-local ones, whose interface means nothing on another host.
pub fn lan_addrs(listen: std::net::SocketAddr) -> Vec<std::net::SocketAddr> {
    if !listen.ip().is_unspecified() {
        return vec![crate::addr::canonical(listen)];
    }
    let usable = |ip: &std::net::IpAddr| match ip {
        std::net::IpAddr::V4(_) => true,
        std::net::IpAddr::V6(v6) => listen.is_ipv6() && !crate::addr::is_link_local(v6),
    };
    match if_addrs::get_if_addrs() {
        Ok(addrs) => {
            let mut addrs: Vec<std::net::SocketAddr> = addrs
                .into_iter()
                .filter(|a| !a.is_loopback() && usable(&a.ip()))
                .map(|a| std::net::SocketAddr::new(a.ip(), listen.port()))
                .collect();
            crate::addr::sort_for_dial(&mut addrs);
            addrs.truncate(MAX_LAN_ADDRS);
            addrs
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot list interfaces");
            Vec::new()
        }
    }
}

/// Whether this machine runs on battery right now (a laptop unplugged):
/// such a node should not be its site's gateway, as it may sleep or leave
/// at any moment. Linux reads `/sys/class/power_supply`; elsewhere (and
/// when unknown) it answers `false`.
pub fn on_battery() -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(entries) = std::fs::read_dir("/sys/class/power_supply") else {
            return false;
        };
        entries.flatten().any(|entry| {
            let read = |name: &str| {
                std::fs::read_to_string(entry.path().join(name))
                    .map(|s| s.trim().to_ascii_lowercase())
                    .unwrap_or_default()
            };
            read("type") == "battery" && read("status") == "discharging"
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

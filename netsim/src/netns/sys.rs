//! The system plumbing under the namespace harness: unique names, running
//! `ip`, `nft` and shell snippets inside a namespace, finding and killing the
//! processes of a namespace, and deleting namespaces.
//!
//! # Invariants
//! - Every namespace name carries the test process id and a per-process
//!   counter (`tc-<pid>-<n>-<label>`), so parallel test processes never
//!   collide; root-namespace interface names stay within the kernel's
//!   15-character limit.
//! - Nothing here configures the root namespace: [`ip`] is only ever called
//!   with `-n NS` or for the short-lived veth pairs of [`super::lan`], and
//!   [`in_ns`] / [`nft`] always run inside a named namespace. The one
//!   machine-wide setting touched is the kernel's neighbour-table size
//!   ([`ensure_neighbour_capacity`]): it can only be set there, it sends
//!   nothing, and it is only ever raised.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

/// Per-process counter that makes namespace and interface names unique.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The next value of the per-process name counter.
pub(super) fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A namespace name `tc-<pid>-<n>-<label>`, unique across test processes.
pub(super) fn ns_name(label: &str) -> String {
    format!("tc-{}-{}-{}", std::process::id(), next_id(), label)
}

/// An interface name `tc<pid hex>-<n hex><suffix>`, at most
/// 2 + 6 + 1 + 4 + 1 = 14 characters for pids below 2^24 and n below 2^16.
/// Used in the root namespace for a veth pair before it is moved, and as a
/// collision-free name while a bridge port moves between namespaces.
pub(super) fn temp_ifname(n: u32, suffix: char) -> String {
    format!("tc{:x}-{:x}{suffix}", std::process::id(), n & 0xffff)
}

/// Runs `cmd` (with `stdin` fed to it, if any) and fails with its stderr if
/// it does not succeed; returns its stdout.
fn run(mut cmd: Command, what: &str, stdin: Option<&str>) -> Result<String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("running {what}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().context("stdin pipe")?;
        pipe.write_all(input.as_bytes())
            .with_context(|| format!("writing to {what}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip ARGS...` and fails with its stderr if it does not succeed.
pub(super) fn ip(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run(
        cmd,
        &format!("`ip {}` (is iproute2 installed?)", args.join(" ")),
        None,
    )
    .map(drop)
}

/// Runs `tc ARGS...` and fails with its stderr if it does not succeed.
pub(super) fn tc(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("tc");
    cmd.args(args);
    run(cmd, &format!("`tc {}`", args.join(" ")), None).map(drop)
}

/// Runs `PROGRAM ARGS...` inside namespace `ns` and returns its stdout.
pub(super) fn in_ns(ns: &str, program: &str, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]).args(args);
    run(
        cmd,
        &format!("`{program} {}` in {ns}", args.join(" ")),
        None,
    )
}

/// Loads the nftables script `script` in namespace `ns` (`nft -f -`: rule
/// sets must be multi-line, one-line chain bodies do not parse).
pub(super) fn nft(ns: &str, script: &str) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "nft", "-f", "-"]);
    run(
        cmd,
        &format!("`nft -f -` in {ns} (is nftables installed?)"),
        Some(script),
    )
    .with_context(|| format!("nft script:\n{script}"))
    .map(drop)
}

/// Entries the kernel's ARP and NDP tables must hold for the namespace
/// LANs: enough for a full mesh of 250 hosts on each of two LANs.
const NEIGHBOUR_ENTRIES: u64 = 131_072;

/// Raises the kernel's neighbour-table limits (`gc_thresh1..3` of IPv4 and
/// IPv6) to hold [`NEIGHBOUR_ENTRIES`], if they are lower.
///
/// Why: the tables are shared by every network namespace of the machine
/// and their limits exist only in the root namespace. With the default
/// `gc_thresh3` of 1,024, a lab LAN of n namespaces that all talk to each
/// other needs n·(n−1) entries, so past about 33 hosts the kernel logs
/// "neighbor table overflow", drops ARP and unicast between the later
/// hosts fails, while multicast (mDNS) still works. Real desktops each
/// have their own kernel and table; this only makes one machine behave
/// like many.
pub fn ensure_neighbour_capacity() -> Result<()> {
    let wanted = [
        NEIGHBOUR_ENTRIES / 8,
        NEIGHBOUR_ENTRIES / 2,
        NEIGHBOUR_ENTRIES,
    ];
    for family in ["ipv4", "ipv6"] {
        // gc_thresh3 first: the kernel wants thresh1 <= thresh2 <= thresh3.
        for (i, want) in wanted.iter().enumerate().rev() {
            let path = format!("/proc/sys/net/{family}/neigh/default/gc_thresh{}", i + 1);
            let now: u64 = std::fs::read_to_string(&path)
                .with_context(|| format!("read {path}"))?
                .trim()
                .parse()
                .with_context(|| format!("parse {path}"))?;
            if now < *want {
                std::fs::write(&path, want.to_string()).with_context(|| format!("write {path}"))?;
                tracing::info!(
                    path,
                    from = now,
                    to = want,
                    "raised the kernel neighbour table limit"
                );
            }
        }
    }
    Ok(())
}

/// Sets the sysctl `key` (a path under `/proc/sys`, e.g.
/// `net/ipv4/ip_forward`) to `value` inside namespace `ns`. Written by a
/// shell inside the namespace, because `/proc/sys/net` shows the writer's
/// namespace (and `sysctl` is not always installed).
pub(super) fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    in_ns(
        ns,
        "sh",
        &["-c", &format!("echo {value} > /proc/sys/{key}")],
    )
    .map(drop)
}

/// The ids of the processes whose network namespace is `ns`
/// (`ip netns pids`).
pub fn netns_pids(ns: &str) -> Result<Vec<u32>> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "pids", ns]);
    let out = run(cmd, &format!("`ip netns pids {ns}`"), None)?;
    out.split_whitespace()
        .map(|pid| pid.parse().with_context(|| format!("bad pid {pid:?}")))
        .collect()
}

/// Sends SIGKILL to every process in namespace `ns`. Best effort: a process
/// may exit on its own meanwhile.
pub(super) fn kill_all_in(ns: &str) {
    for pid in netns_pids(ns).unwrap_or_default() {
        tracing::debug!(ns, pid, "killing process");
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
    }
}

/// Kills `child` with SIGKILL and reaps it, so it leaves no zombie. Does
/// nothing (and does not fail) if it has already exited.
///
/// A child started with [`super::Host::command`] is the program itself
/// (`ip netns exec` execs it), so this kills the program, not a wrapper.
pub fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills every process still running in namespace `ns`, then deletes it.
/// Best effort: errors are logged, because this runs from `Drop`.
pub(super) fn delete_ns(ns: &str) {
    kill_all_in(ns);
    if let Err(err) = ip(&["netns", "del", ns]) {
        tracing::warn!("cleanup of namespace {ns}: {err:#}");
    }
}

/// Whether this process runs with effective uid 0 (read from procfs, which
/// avoids an `unsafe` libc call).
pub(super) fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_ifnames_fit_the_kernel_limit() {
        let name = temp_ifname(u32::MAX, 'a');
        assert!(name.len() <= 15, "{name}");
    }

    #[test]
    fn names_are_unique() {
        assert_ne!(ns_name("x"), ns_name("x"));
    }
}

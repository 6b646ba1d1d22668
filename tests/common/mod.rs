//! Shared helpers for the end-to-end tests: build and locate the real
//! `tincan` binary, start daemons (optionally inside a network namespace),
//! run CLI commands and wait for conditions with generous deadlines.
#![allow(dead_code)]

pub mod branches;
pub mod cargo;
pub mod chaos;
pub mod lan_nodes;
pub mod loopback;
pub mod raw_peer;
pub mod room;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The path of the `tincan` binary, built once per test process.
///
/// The binary lives in the `tincan-node` package, so cargo does not hand its
/// path to this package's tests (`CARGO_BIN_EXE_*` is per package): build it.
pub fn tincan_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("tincan-node", "tincan"))
}

/// The path of the `tincan-relay` binary, built once per test process.
pub fn relay_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("tincan-relay", "tincan-relay"))
}

/// The path of the `tincan-gui` binary, built once per test process.
pub fn gui_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("tincan-gui", "tincan-gui"))
}

/// Builds `bin` of `package` (unless [`cargo::prebuilt`]) and returns its
/// path in this test's target directory and profile.
fn build_bin(package: &str, bin: &str) -> PathBuf {
    if !cargo::prebuilt() {
        let mut build = cargo::cargo();
        build.args(["build", "-q", "-p", package, "--bin", bin]);
        // `cargo test --release` looks for (and must run) release binaries.
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building {bin} failed");
    }
    // target/<profile>/deps/<test-binary> -> target/<profile>/<bin>
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(bin);
    assert!(
        path.exists(),
        "{bin} binary not found at {}",
        path.display()
    );
    path
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
/// For waiting on events, never for asserting speed.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP/UDP port on 127.0.0.1 (best effort: bind to 0, read, release).
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

/// Runs `tincan --home HOME ARGS...` to completion.
pub fn cli(home: &Path, args: &[&str]) -> Output {
    cli_with(tincan_bin(), home, args)
}

/// Like [`cli`], with another `tincan` binary (an installed one).
pub fn cli_with(bin: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .arg("--home")
        .arg(home)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tincan")
}

/// Runs a CLI command that must succeed and print JSON; returns the JSON.
pub fn cli_json(home: &Path, args: &[&str]) -> serde_json::Value {
    cli_json_with(tincan_bin(), home, args)
}

/// Like [`cli_json`], with another `tincan` binary (an installed one).
pub fn cli_json_with(bin: &Path, home: &Path, args: &[&str]) -> serde_json::Value {
    let out = cli_with(bin, home, args);
    assert!(
        out.status.success(),
        "tincan {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tincan {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Everything the daemons of `home` logged, all runs (`daemon-PID.log`,
/// as [`Daemon`] names them), for assertion messages.
pub fn daemon_logs(home: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(home) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("daemon-") && name.ends_with(".log") {
                text += &std::fs::read_to_string(entry.path()).unwrap_or_default();
            }
        }
    }
    text
}

/// A running `tincan run` daemon; killed (SIGKILL) when dropped.
pub struct Daemon {
    /// The daemon's home directory.
    pub home: PathBuf,
    /// The `tincan` binary it runs (its CLI checks readiness).
    bin: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `tincan --home HOME run ARGS...`, optionally inside network
    /// namespace `netns`, and waits until its control socket answers.
    pub fn start(home: &Path, args: &[&str], netns: Option<&str>) -> Daemon {
        Self::start_with_env(home, args, netns, &[])
    }

    /// Like [`Daemon::start`], with extra environment variables for the
    /// daemon process (e.g. `USER`, to test the default identity name).
    pub fn start_with_env(
        home: &Path,
        args: &[&str],
        netns: Option<&str>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(tincan_bin());
                c
            }
            None => Command::new(tincan_bin()),
        };
        Self::spawn(cmd, tincan_bin(), home, args, env)
    }

    /// Like [`Daemon::start`] with another `tincan` binary (an installed
    /// one), which also answers the readiness checks.
    pub fn start_bin(bin: &Path, home: &Path, args: &[&str]) -> Daemon {
        Self::spawn(Command::new(bin), bin, home, args, &[])
    }

    /// Like [`Daemon::start`], in a private mount namespace of its own in
    /// which `dir` is a fresh tmpfs of `size` (`mount -o size=`, e.g.
    /// `1m`): a small disk for this daemon only. Nothing is mounted in the
    /// test's namespace, and the mount vanishes with the daemon (also when
    /// the test fails). Needs root ([`private_mounts_available`]).
    pub fn start_with_tmpfs(home: &Path, args: &[&str], dir: &Path, size: &str) -> Daemon {
        std::fs::create_dir_all(dir).expect("create mount point");
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount -t tmpfs -o "size=$1" tincan-test "$2" && shift 2 && exec "$@""#)
            .args(["sh", size])
            .arg(dir)
            .arg(tincan_bin());
        Self::spawn(cmd, tincan_bin(), home, args, &[])
    }

    /// The daemon's process id (for `nsenter`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(
        mut cmd: Command,
        bin: &Path,
        home: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        std::fs::create_dir_all(home).expect("create home");
        let log = home.join(format!("daemon-{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open daemon log");
        cmd.arg("--home")
            .arg(home)
            .arg("run")
            .args(args)
            // Debug logs by default; big LANs measured by hand use `info`
            // (TINCAN_TEST_DAEMON_LOG): hundreds of daemons logging every
            // mDNS answer load the one machine they share.
            .env(
                "RUST_LOG",
                std::env::var("TINCAN_TEST_DAEMON_LOG")
                    .unwrap_or_else(|_| "tincan=debug,info".into()),
            )
            // Decisions still show as `notification` events; nothing pops up.
            .env("TINCAN_NO_NOTIFICATIONS", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log"))
            .stderr(log_file);
        let child = cmd.spawn().expect("spawn tincan run");
        let mut daemon = Daemon {
            home: home.to_path_buf(),
            bin: bin.to_path_buf(),
            child: Some(child),
            log,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let home = self.home.clone();
        let bin = self.bin.clone();
        let log = self.log.clone();
        let child = self.child.as_mut().expect("child");
        // Hundreds of daemons starting at once on one small machine take
        // longer than one: TINCAN_TEST_READY_SECS raises the bound.
        let ready = std::env::var("TINCAN_TEST_READY_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        wait_for("daemon control socket", Duration::from_secs(ready), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "daemon exited early with {status}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            // The socket accepts first (checked in-process: hundreds of
            // daemons starting at once would otherwise each spawn a CLI
            // every 50 ms and load the machine they wait for), then the
            // CLI must answer as a user's would.
            std::os::unix::net::UnixStream::connect(home.join("control.sock")).ok()?;
            cli_with(&bin, &home, &["status", "--json"])
                .status
                .success()
                .then_some(())
        });
    }

    /// `tincan status --json` of this daemon.
    pub fn status(&self) -> serde_json::Value {
        cli_json_with(&self.bin, &self.home, &["status", "--json"])
    }

    /// Where the daemon logs (appended to by every run of this test).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The daemon's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to `timeout`) for the daemon to exit by itself, e.g. at a
    /// test hook that aborts it; returns how it ended.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("a running daemon");
        wait_for("the daemon to exit", timeout, || {
            child.try_wait().expect("poll the daemon")
        })
    }

    /// Kills the daemon with SIGKILL and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether this process may make private mount namespaces and mount in
/// them (root), for [`Daemon::start_with_tmpfs`].
pub fn private_mounts_available() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

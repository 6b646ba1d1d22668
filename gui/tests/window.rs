//! The real window under Xvfb: `tincan-gui` with a CLI node as its peer
//! (static peers on 127.0.0.1, no mDNS), driven with xdotool, screenshots
//! saved to `<target>/gui-screenshots/`. Asserts on the window (its title)
//! and on the nodes' histories, never on pixels.
//!
//! Skips (with a line saying so) where Xvfb, xdotool or ImageMagick's
//! `import` is missing; `scripts/setup.sh` installs them.

#[path = "../../tests/common/cargo.rs"]
mod cargo;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Children stopped when dropped — also when the test panics.
struct Guard {
    children: Vec<Child>,
    /// The Xvfb display number, whose lock and socket files are ours.
    display: Option<u32>,
}

impl Guard {
    fn new() -> Self {
        Self {
            children: Vec::new(),
            display: None,
        }
    }

    fn push(&mut self, child: Child) {
        self.children.push(child);
    }
}

/// SIGTERM (Xvfb removes its lock and socket then), SIGKILL after 3 s.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The app first, Xvfb (pushed first) last.
        for child in self.children.iter_mut().rev() {
            stop(child);
        }
        if let Some(n) = self.display {
            let _ = std::fs::remove_file(format!("/tmp/.X{n}-lock"));
            let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{n}"));
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tools_missing() -> bool {
    let missing: Vec<_> = ["Xvfb", "xdotool", "import"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        println!(
            "skipping the real-window test: {} not installed (scripts/setup.sh installs them)",
            missing.join(", ")
        );
    }
    !missing.is_empty()
}

/// The cargo target directory this test runs from.
fn target_dir() -> PathBuf {
    // <target>/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}

/// The `tincan` CLI, built once (it lives in another package, so cargo
/// does not build it for this one's tests).
fn tincan_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if !cargo::prebuilt() {
            let start = Instant::now();
            let mut build = cargo::cargo();
            build
                .args(["build", "-q", "-p", "tincan-node", "--bin", "tincan"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "building tincan failed");
            println!("building tincan: {:?}", start.elapsed());
        }
        let exe = std::env::current_exe().expect("current exe");
        let path = exe
            .parent()
            .and_then(Path::parent)
            .expect("profile dir")
            .join("tincan");
        assert!(path.exists(), "no tincan binary at {}", path.display());
        path
    })
}

fn cli(home: &Path, args: &[&str]) -> Output {
    Command::new(tincan_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tincan")
}

fn cli_ok(home: &Path, args: &[&str]) -> String {
    let out = cli(home, args);
    assert!(
        out.status.success(),
        "tincan {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if let Some(value) = check() {
            println!("{what}: after {:?}", start.elapsed());
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind")
        .port()
}

/// Starts Xvfb on a display number nobody uses; returns it once the
/// server accepts connections. Xvfb picks the number itself (`-displayfd`),
/// so parallel tests never race for one.
fn start_xvfb(guard: &mut Guard) -> String {
    use std::io::BufRead;
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
            // No server reset when the last client (an xdotool query)
            // disconnects: the app's connection could hit the reset.
            "-noreset",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let stdout = child.stdout.take().expect("Xvfb stdout");
    guard.push(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("Xvfb did not say which display it took");
    let n: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb printed {line:?}, not a display number"));
    guard.display = Some(n);
    format!(":{n}")
}

fn xdotool(display: &str, args: &[&str]) -> Output {
    Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("run xdotool")
}

/// Titles of the windows named like tincan.
fn titles(display: &str) -> Vec<String> {
    let ids = xdotool(display, &["search", "--name", "tincan"]);
    String::from_utf8_lossy(&ids.stdout)
        .lines()
        .filter_map(|id| {
            let out = xdotool(display, &["getwindowname", id.trim()]);
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .collect()
}

/// Waits for a window titled `title`; says what there is if none comes.
fn wait_for_title(display: &str, title: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if titles(display).iter().any(|t| t == title) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no window titled {title:?} after 60 s; windows: {:?}; the app said:\n{}",
        titles(display),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn screenshot(display: &str, name: &str) -> PathBuf {
    let dir = target_dir().join("gui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let path = dir.join(name);
    let status = Command::new("import")
        .args(["-window", "root"])
        .arg(&path)
        .env("DISPLAY", display)
        .status()
        .expect("run import");
    assert!(status.success(), "import failed");
    let size = std::fs::metadata(&path).expect("screenshot").len();
    assert!(size > 1000, "screenshot {} is {size} bytes", path.display());
    println!("screenshot: {}", path.display());
    path
}

fn start_gui(guard: &mut Guard, display: &str, home: &Path, log: &Path, args: &[&str]) {
    let log = std::fs::File::create(log).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_tincan-gui"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("DISPLAY", display)
        .env("RUST_LOG", "warn")
        // Never a desktop notification from a test.
        .env("TINCAN_NO_NOTIFICATIONS", "1")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start tincan-gui");
    guard.push(child);
}

/// Gives the tincan window the keyboard (Xvfb runs no window manager to
/// do it on a click).
fn focus_window(display: &str) {
    let moved = xdotool(display, &["mousemove", "640", "400"]);
    assert!(moved.status.success(), "xdotool mousemove failed");
    let ids = xdotool(display, &["search", "--name", "tincan"]);
    for id in String::from_utf8_lossy(&ids.stdout).lines() {
        let _ = xdotool(display, &["windowfocus", id.trim()]);
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// Types into the focused window.
fn type_keys(display: &str, text: &str) {
    let out = xdotool(display, &["type", "--delay", "40", text]);
    assert!(out.status.success(), "xdotool type failed");
}

fn key(display: &str, key: &str) {
    let out = xdotool(display, &["key", key]);
    assert!(out.status.success(), "xdotool key failed");
}

#[test]
fn conversation_with_a_cli_peer_in_a_real_window() {
    if tools_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (gui_home, peer_home) = (dir.path().join("anna"), dir.path().join("berta"));
    cli_ok(&gui_home, &["init", "--name", "Anna Desk"]);
    cli_ok(&peer_home, &["init", "--name", "Berta Peer"]);
    let (peer_port, gui_port) = (free_port(), free_port());
    let peer_addr = format!("127.0.0.1:{peer_port}");
    let gui_addr = format!("127.0.0.1:{gui_port}");

    let mut guard = Guard::new();
    let display = start_xvfb(&mut guard);
    let peer = Command::new(tincan_bin())
        .arg("--home")
        .arg(&peer_home)
        .args(["run", "--no-mdns", "--listen", &peer_addr])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the peer");
    guard.push(peer);
    wait_for("the peer's control socket", Duration::from_secs(30), || {
        cli(&peer_home, &["status", "--json"])
            .status
            .success()
            .then_some(())
    });

    let log = dir.path().join("gui.log");
    start_gui(
        &mut guard,
        &display,
        &gui_home,
        &log,
        &["--no-mdns", "--listen", &gui_addr, "--peer", &peer_addr],
    );
    let gui_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The window exists and its node runs (the title names the user).
    wait_for_title(&display, "tincan — Anna Desk", &log);
    // The GUI embeds the node: the CLI reaches it through its control socket.
    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(&gui_home, &["status", "--json"])).expect("status json");
    assert_eq!(status["name"], "Anna Desk", "{}", gui_log());

    wait_for("the two nodes to meet", Duration::from_secs(30), || {
        let peers = cli_ok(&peer_home, &["peers", "--json"]);
        let peers: serde_json::Value = serde_json::from_str(&peers).ok()?;
        peers
            .as_array()?
            .iter()
            .any(|p| p["name"] == "Anna Desk" && p["online"] == true)
            .then_some(())
    });
    let text = "Hi Anna, the new coffee machine works!";
    cli_ok(
        &peer_home,
        &["send", "Anna Desk", text, "--wait", "--timeout", "30"],
    );

    // The GUI's node has it, and the window's live event stream saw it.
    wait_for(
        "the message in the GUI's history",
        Duration::from_secs(30),
        || {
            let history = cli_ok(&gui_home, &["history", "Berta Peer", "--json"]);
            history.contains(text).then_some(())
        },
    );
    wait_for(
        "the unread count in the title",
        Duration::from_secs(30),
        || {
            titles(&display)
                .iter()
                .any(|t| t == "(1) tincan — Anna Desk")
                .then_some(())
        },
    );

    // Reply with the keyboard only: the search box has focus; Enter opens
    // the first match and focuses the composer; Enter sends.
    focus_window(&display);
    type_keys(&display, "Berta");
    key(&display, "Return");
    std::thread::sleep(Duration::from_millis(500));
    let reply = "Great, see you there at 12";
    type_keys(&display, reply);
    key(&display, "Return");
    wait_for("the reply at the peer", Duration::from_secs(30), || {
        let history = cli_ok(&peer_home, &["history", "Anna Desk", "--json"]);
        let history: serde_json::Value = serde_json::from_str(&history).ok()?;
        history
            .as_array()?
            .iter()
            .any(|m| m["text"] == reply && m["direction"] == "in")
            .then_some(())
    });
    wait_for(
        "the conversation to be read",
        Duration::from_secs(10),
        || {
            titles(&display)
                .iter()
                .any(|t| t == "tincan — Anna Desk")
                .then_some(())
        },
    );
    // Let the delivery tick arrive before the picture.
    wait_for("the reply delivered", Duration::from_secs(30), || {
        let history = cli_ok(&gui_home, &["history", "Berta Peer", "--json"]);
        let history: serde_json::Value = serde_json::from_str(&history).ok()?;
        history
            .as_array()?
            .iter()
            .any(|m| m["text"] == reply && m["state"] == "delivered")
            .then_some(())
    });
    // The peer goes busy with a note and offers a file: the window shows
    // both (the picture), the GUI's node has the offer.
    cli_ok(
        &peer_home,
        &["presence", "set", "busy", "--note", "in a meeting until 3"],
    );
    let agenda = dir.path().join("agenda.pdf");
    std::fs::write(&agenda, vec![7u8; 180_000]).expect("write");
    cli_ok(
        &peer_home,
        &["file", "send", "Anna Desk", agenda.to_str().expect("utf8")],
    );
    wait_for(
        "the offer at the GUI's node",
        Duration::from_secs(30),
        || {
            let list = cli_ok(&gui_home, &["file", "list", "--json"]);
            let list: serde_json::Value = serde_json::from_str(&list).ok()?;
            list.as_array()?
                .iter()
                .any(|t| t["name"] == "agenda.pdf" && t["state"] == "offered")
                .then_some(())
        },
    );
    wait_for(
        "the note at the GUI's node",
        Duration::from_secs(30),
        || {
            let peers = cli_ok(&gui_home, &["peers", "--json"]);
            peers.contains("in a meeting until 3").then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(800));
    screenshot(&display, "conversation.png");
    assert!(
        !gui_log().contains("panicked"),
        "the GUI panicked: {}",
        gui_log()
    );
}

#[test]
fn first_run_in_a_real_window() {
    if tools_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("new");
    let mut guard = Guard::new();
    let display = start_xvfb(&mut guard);
    let log = dir.path().join("gui.log");
    let port = free_port();
    start_gui(
        &mut guard,
        &display,
        &home,
        &log,
        &["--no-mdns", "--listen", &format!("127.0.0.1:{port}")],
    );
    wait_for_title(&display, "tincan", &log);
    std::thread::sleep(Duration::from_millis(800));
    screenshot(&display, "first-run.png");
    assert!(
        !home.join("identity.key").exists(),
        "nothing before the name"
    );

    // The name field is focused and prefilled: replace it, press Enter.
    focus_window(&display);
    key(&display, "ctrl+a");
    type_keys(&display, "Carla New");
    key(&display, "Return");
    wait_for("the identity and the node", Duration::from_secs(30), || {
        titles(&display)
            .iter()
            .any(|t| t == "tincan — Carla New")
            .then_some(())
    });
    let who: serde_json::Value =
        serde_json::from_str(&cli_ok(&home, &["whoami", "--json"])).expect("whoami");
    assert_eq!(who["name"], "Carla New");
    // The node runs inside the window: its control socket answers.
    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(&home, &["status", "--json"])).expect("status");
    assert_eq!(status["name"], "Carla New");
    screenshot(&display, "first-run-extras.png");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains("panicked"), "the GUI panicked: {log}");
}

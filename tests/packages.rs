//! The Debian packages as a user gets them (issue 18): `scripts/package.sh`
//! packages the debug binaries (`TINCAN_PACKAGE_PROFILE=dev`, no build),
//! then for each `.deb` the control data and file list are checked
//! (`dpkg-deb -I` / `-c`), it is unpacked into a throwaway root (`dpkg -x`)
//! and what it installed is run: every binary's `--version`,
//! `desktop-file-validate` on the desktop entry, the systemd units'
//! `ExecStart` (and `systemd-analyze verify` where it is installed), the
//! relay's `init` in a home of its own, and two nodes of the *installed*
//! `tincan` exchanging a message.
//!
//! cargo-deb is installed by `scripts/package.sh` when missing; where that
//! cannot be done (no crates.io) this test fails saying so, it never skips.
//!
//! Safety: the nodes run with `--no-mdns`, listen on 127.0.0.1 and dial
//! only each other there.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{cli_json_with, free_udp_port, wait_for, Daemon};

/// The workspace version every binary reports.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One package: its name, the files it must install (absolute paths in
/// the installed system) and its binary.
struct Expected {
    name: &'static str,
    bin: &'static str,
    files: &'static [&'static str],
}

const PACKAGES: [Expected; 3] = [
    Expected {
        name: "tincan",
        bin: "tincan",
        files: &["/usr/bin/tincan", "/usr/lib/systemd/user/tincan.service"],
    },
    Expected {
        name: "tincan-gui",
        bin: "tincan-gui",
        files: &[
            "/usr/bin/tincan-gui",
            "/usr/share/applications/tincan.desktop",
            "/usr/share/icons/hicolor/scalable/apps/tincan.svg",
            "/usr/share/icons/hicolor/128x128/apps/tincan.png",
        ],
    },
    Expected {
        name: "tincan-relay",
        bin: "tincan-relay",
        files: &[
            "/usr/bin/tincan-relay",
            "/usr/lib/systemd/system/tincan-relay.service",
            "/etc/default/tincan-relay",
        ],
    },
];

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `tool` can be run (it is on the PATH).
fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null", "sh", tool])
        .status()
        .is_ok_and(|s| s.success())
}

/// `path` (absolute, as installed) inside the unpacked `root`.
fn rooted(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Runs `scripts/package.sh` on this test's binaries; returns the .deb paths.
fn build_packages(target: &Path, out: &Path) -> Vec<PathBuf> {
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    let mut cmd = common::cargo::without_test_env(Command::new("bash"));
    cmd.arg("scripts/package.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target)
        .env("TINCAN_PACKAGE_PROFILE", profile)
        .env("TINCAN_PACKAGE_OUT", out);
    let output = cmd.output().expect("run scripts/package.sh");
    assert!(
        output.status.success(),
        "scripts/package.sh failed: the packages could not be built (is cargo-deb \
         installed, or can `cargo install cargo-deb --locked` reach crates.io?)\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let debs: Vec<PathBuf> = text(&output.stdout)
        .lines()
        .filter(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .collect();
    assert_eq!(
        debs.len(),
        3,
        "package.sh should print three .deb files:\n{}",
        text(&output.stdout)
    );
    debs
}

/// The value of `key=` in a unit or desktop file (the first one).
fn value<'a>(file: &'a str, key: &str) -> Option<&'a str> {
    file.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// `systemd-analyze verify` on a copy of `unit` whose `/usr/bin/` paths
/// point into `root` (it checks that the command exists). Its exit code
/// says little (unknown keys only warn), so no line may name the unit.
fn verify_unit(root: &Path, unit: &Path, user: bool, scratch: &Path) {
    let name = unit.file_name().expect("unit name");
    let copy = scratch.join(name);
    let bin = format!("{}/", rooted(root, "/usr/bin").display());
    let content = std::fs::read_to_string(unit).expect("read unit");
    std::fs::write(&copy, content.replace("/usr/bin/", &bin)).expect("write unit copy");
    let runtime = scratch.join("runtime");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify").arg("--man=no");
    if user {
        cmd.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
    }
    let out = cmd.arg(&copy).output().expect("run systemd-analyze");
    let report = text(&out.stderr) + &text(&out.stdout);
    let name = name.to_string_lossy();
    assert!(
        !report.lines().any(|l| l.contains(&*name)),
        "systemd-analyze verify {name}:\n{report}"
    );
}

#[test]
fn packages_unpack_and_run() {
    let start = Instant::now();
    // What gets packaged: nothing is built when scripts/test.sh built it.
    let tincan = common::tincan_bin();
    common::relay_bin();
    common::gui_bin();
    // <target>/<profile>/tincan
    let target = tincan.ancestors().nth(2).expect("target dir");

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let debs = build_packages(target, &dir.path().join("debs"));
    println!("packaging: {:?}", start.elapsed());

    for expected in &PACKAGES {
        let deb = debs
            .iter()
            .find(|d| {
                d.file_name().is_some_and(|f| {
                    f.to_string_lossy()
                        .starts_with(&format!("{}_", expected.name))
                })
            })
            .unwrap_or_else(|| panic!("no {} package in {debs:?}", expected.name));

        let info = text(&run(Command::new("dpkg-deb").arg("-I").arg(deb)).stdout);
        for field in [
            format!("Package: {}", expected.name),
            format!("Version: {VERSION}-1"),
            "Section: net".into(),
            "Maintainer: ".into(),
            "Depends: ".into(),
        ] {
            assert!(
                info.contains(&field),
                "{}: no '{field}' in\n{info}",
                expected.name
            );
        }
        let list = text(&run(Command::new("dpkg-deb").arg("-c").arg(deb)).stdout);
        for file in expected.files {
            assert!(
                list.lines().any(|l| l.ends_with(&format!(".{file}"))),
                "{} does not install {file}:\n{list}",
                expected.name
            );
        }

        run(Command::new("dpkg").arg("-x").arg(deb).arg(&root));
        let bin = rooted(&root, &format!("/usr/bin/{}", expected.bin));
        let version = text(&run(Command::new(&bin).arg("--version")).stdout);
        assert_eq!(version.trim(), format!("{} {VERSION}", expected.bin));
    }

    // tincan: the user unit runs the installed node.
    let unit_path = rooted(&root, "/usr/lib/systemd/user/tincan.service");
    let unit = std::fs::read_to_string(&unit_path).expect("tincan.service");
    assert_eq!(value(&unit, "ExecStart"), Some("/usr/bin/tincan run"));
    assert_eq!(value(&unit, "Restart"), Some("on-failure"));
    assert_eq!(value(&unit, "WantedBy"), Some("default.target"));

    // tincan-gui: a valid desktop entry whose command and icon are installed.
    let desktop = rooted(&root, "/usr/share/applications/tincan.desktop");
    assert!(
        have("desktop-file-validate"),
        "desktop-file-validate is missing: install desktop-file-utils (scripts/setup.sh does)"
    );
    let checked = run(Command::new("desktop-file-validate").arg(&desktop));
    let report = text(&checked.stdout) + &text(&checked.stderr);
    assert!(report.trim().is_empty(), "desktop-file-validate: {report}");
    let entry = std::fs::read_to_string(&desktop).expect("tincan.desktop");
    let exec = value(&entry, "Exec").expect("Exec=");
    assert!(
        rooted(&root, &format!("/usr/bin/{exec}")).is_file(),
        "Exec={exec}"
    );
    let icon = value(&entry, "Icon").expect("Icon=");
    assert!(
        rooted(
            &root,
            &format!("/usr/share/icons/hicolor/scalable/apps/{icon}.svg")
        )
        .is_file(),
        "Icon={icon}"
    );

    // tincan-relay: a system service as its own user, its state directory
    // passed as the home; the package creates the user.
    let relay_unit_path = rooted(&root, "/usr/lib/systemd/system/tincan-relay.service");
    let relay_unit = std::fs::read_to_string(&relay_unit_path).expect("tincan-relay.service");
    let exec = value(&relay_unit, "ExecStart").expect("ExecStart=");
    assert!(
        exec.starts_with("/usr/bin/tincan-relay --home %S/tincan-relay run "),
        "ExecStart={exec}"
    );
    assert_eq!(value(&relay_unit, "User"), Some("tincan-relay"));
    assert_eq!(value(&relay_unit, "StateDirectory"), Some("tincan-relay"));
    let control = dir.path().join("relay-control");
    let relay_deb = debs
        .iter()
        .find(|d| d.to_string_lossy().contains("tincan-relay_"))
        .expect("relay deb");
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(relay_deb)
        .arg(&control));
    let postinst = std::fs::read_to_string(control.join("postinst")).expect("postinst");
    assert!(
        postinst.contains("adduser --system --group") && postinst.contains("tincan-relay"),
        "postinst creates no system user:\n{postinst}"
    );
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    let conffiles = std::fs::read_to_string(control.join("conffiles")).expect("conffiles");
    assert!(
        conffiles.contains("/etc/default/tincan-relay"),
        "{conffiles}"
    );
    let relay_home = dir.path().join("relay-home");
    let relay_bin = rooted(&root, "/usr/bin/tincan-relay");
    let init = run(Command::new(&relay_bin)
        .arg("--home")
        .arg(&relay_home)
        .args(["init", "--json"]));
    let init: serde_json::Value = serde_json::from_slice(&init.stdout).expect("init --json");
    assert!(init["fingerprint"].is_string(), "{init}");

    if have("systemd-analyze") {
        let scratch = dir.path().join("units");
        std::fs::create_dir_all(&scratch).expect("scratch");
        verify_unit(&root, &unit_path, true, &scratch);
        verify_unit(&root, &relay_unit_path, false, &scratch);
    } else {
        println!("systemd-analyze is not installed: unit files checked by content only");
    }

    // Two nodes of the installed `tincan` on loopback.
    let tincan = rooted(&root, "/usr/bin/tincan");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    cli_json_with(&tincan, &alice, &["init", "--name", "Alice", "--json"]);
    cli_json_with(&tincan, &bob, &["init", "--name", "Bob", "--json"]);
    let (a, b) = (
        format!("127.0.0.1:{}", free_udp_port()),
        format!("127.0.0.1:{}", free_udp_port()),
    );
    let _alice = Daemon::start_bin(
        &tincan,
        &alice,
        &["--no-mdns", "--listen", &a, "--peer", &b],
    );
    let _bob = Daemon::start_bin(&tincan, &bob, &["--no-mdns", "--listen", &b, "--peer", &a]);
    let sent = cli_json_with(
        &tincan,
        &alice,
        &[
            "send",
            "bob",
            "from the package",
            "--wait",
            "--timeout",
            "30",
            "--json",
        ],
    );
    assert_eq!(sent["state"], "delivered", "{sent}");
    wait_for(
        "the message in Bob's history",
        Duration::from_secs(30),
        || {
            let history = cli_json_with(&tincan, &bob, &["history", "alice", "--json"]);
            history
                .as_array()?
                .iter()
                .any(|m| m["text"] == "from the package" && m["direction"] == "in")
                .then_some(())
        },
    );
    println!("packages test: {:?}", start.elapsed());
}

//! Authentication at the relay, end to end (issue 4, test 5): devices that
//! are not members of an organisation the relay serves are refused with a
//! clear reason on their side; a revoked user is cut off at the relay and
//! on the LAN; two organisations on one relay never see or reach each
//! other. Also: a bad `--relay` value and a relay that does not prove the
//! pinned key are refused clearly.
//!
//! The netns tests need root and iproute2 (CI has both) and skip otherwise;
//! all their traffic stays inside the namespaces they create. Deadlines
//! are generous: they bound a hang, they never measure speed.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::branches::{Branches, OrgSpec};
use common::{cli, cli_json, wait_for};
use serde_json::Value;
use tincan_netsim::netns_available;

const DEADLINE: Duration = Duration::from_secs(60);

fn skip() -> bool {
    if netns_available() {
        return false;
    }
    println!("skipping: network namespaces unavailable (needs root and iproute2)");
    true
}

/// `status.relay.error` of `name`, lowercased, once it mentions `needle`.
fn wait_relay_error(org: &Branches, name: &str, needle: &str) -> String {
    wait_for(
        &format!("{name}'s relay error mentioning {needle:?}"),
        DEADLINE,
        || {
            let status = org.status(name);
            let error = status["relay"]["error"].as_str()?.to_string();
            (status["relay"]["connected"] == false && error.to_lowercase().contains(needle))
                .then_some(error)
        },
    )
}

/// Device ids the relay lists for organisation `org_id`, with their
/// `online` flag.
fn relay_devices(status: &Value, org_id: &str) -> Vec<(String, bool)> {
    status["orgs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["org_id"] == org_id)
        .flat_map(|o| o["devices"].as_array().cloned().unwrap_or_default())
        .map(|d| {
            (
                d["device_id"].as_str().unwrap_or_default().to_string(),
                d["online"] == true,
            )
        })
        .collect()
}

/// Every device id the relay lists, in any organisation.
fn relay_all_devices(status: &Value) -> BTreeSet<String> {
    status["orgs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["devices"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d["device_id"].as_str().map(String::from))
        .collect()
}

/// Device ids in `name`'s `peers --json`, with their `online` flag.
fn peer_devices(org: &Branches, name: &str) -> Vec<(String, bool)> {
    let peers = cli_json(&org.member(name).home, &["peers", "--json"]);
    peers
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["device_id"].as_str().unwrap_or_default().to_string(),
                p["online"] == true,
            )
        })
        .collect()
}

/// Sends and expects the CLI to refuse: the error text.
fn send_refused(org: &Branches, from: &str, to: &str) -> String {
    let out = cli(
        &org.member(from).home,
        &["send", to, "are you there?", "--json"],
    );
    assert!(
        !out.status.success(),
        "send {from} → {to} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn outsiders_are_refused_with_a_clear_reason() {
    if skip() {
        return;
    }
    let mut org = Branches::with_orgs(&[
        OrgSpec {
            name: "Acme",
            served: true,
            sites: &[
                ("a", "10.11.1", &["Alice"]),
                ("x", "10.11.2", &["Xena"]),
                ("n", "10.11.3", &["Nina"]),
                ("w", "10.11.4", &["Walt"]),
            ],
        },
        OrgSpec {
            name: "Evil",
            served: false,
            sites: &[("e", "10.11.5", &["Eve"])],
        },
    ]);
    // Xena's membership has run out (issued for 0 days, put in place by
    // hand: `org join` itself refuses an expired one).
    let expired = org.member("Xena").home.join("expired.membership");
    cli_json(
        &org.member("Alice").home,
        &[
            "org",
            "issue",
            &org.member("Xena").user_id,
            "--days",
            "0",
            "--out",
            expired.to_str().expect("utf-8"),
            "--json",
        ],
    );
    std::fs::copy(&expired, org.member("Xena").home.join("membership.txt")).expect("copy");
    // Nina never joined (her membership is taken away).
    std::fs::remove_file(org.member("Nina").home.join("membership.txt")).expect("remove");
    // Walt pins the fingerprint of another relay key.
    let other = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(common::relay_bin())
        .arg("--home")
        .arg(other.path())
        .args(["init", "--json"])
        .output()
        .expect("relay init");
    let fp: Value = serde_json::from_slice(&out.stdout).expect("json");
    let (host_port, _) = org.relay.addr.split_once('#').expect("addr");
    let wrong = format!("{host_port}#{}", fp["fingerprint"].as_str().expect("fp"));

    for name in ["Alice", "Xena", "Nina", "Eve"] {
        let i = org.index(name);
        org.start(i, &[]);
    }
    let walt = org.index("Walt");
    org.start_with_relay(walt, Some(&wrong), &[]);

    // The member gets on (the relay works) ...
    wait_for("Alice on the relay", DEADLINE, || {
        (org.status("Alice")["relay"]["connected"] == true).then_some(())
    });
    // ... the others are refused, each with its reason.
    let eve = wait_relay_error(&org, "Eve", "not served");
    println!("Eve (other organisation): {eve}");
    let xena = wait_relay_error(&org, "Xena", "expired");
    println!("Xena (expired membership): {xena}");
    let nina = wait_relay_error(&org, "Nina", "not joined");
    println!("Nina (no membership): {nina}");
    let walt_error = wait_relay_error(&org, "Walt", "fingerprint");
    println!("Walt (wrong relay key): {walt_error}");
    assert!(nina.contains("tincan org join"), "{nina}");
    assert!(walt_error.contains("refus"), "{walt_error}");

    // None of them ever shows up at the relay.
    let status = org.relay_status();
    let listed = relay_all_devices(&status);
    for name in ["Xena", "Nina", "Walt", "Eve"] {
        assert!(
            !listed.contains(&org.member(name).device_id),
            "{name} must not be known to the relay: {status}"
        );
    }
    let acme = relay_devices(&status, &org.org_ids[0]);
    assert_eq!(
        acme,
        [(org.member("Alice").device_id.clone(), true)],
        "{status}"
    );
    assert_eq!(
        status["orgs"].as_array().map(Vec::len),
        Some(1),
        "only Acme is served: {status}"
    );

    // Alice cannot reach any of them across sites: they are unknown peers.
    for name in ["Eve", "Xena", "Nina"] {
        let error = send_refused(&org, "Alice", name);
        assert!(error.contains("no peer matches"), "{error}");
    }
    let eve_peers = peer_devices(&org, "Eve");
    assert!(eve_peers.is_empty(), "Eve learns nobody: {eve_peers:?}");
}

#[test]
fn revoked_users_are_cut_off_at_the_relay_and_on_the_lan() {
    if skip() {
        return;
    }
    let mut org = Branches::new(&[
        ("a", "10.12.1", &["Alice", "Anna", "Rolf"]),
        ("b", "10.12.2", &["Bob", "Berta"]),
        ("c", "10.12.3", &["Mallory"]),
    ]);
    // The admin is a plain member behind Anna, the gateway: the list must
    // travel admin → gateway → relay → everyone.
    let (alice, anna) = (org.index("Alice"), org.index("Anna"));
    org.start(alice, &["--gateway", "never"]);
    org.start(anna, &["--gateway", "prefer"]);
    for name in ["Rolf", "Bob", "Berta", "Mallory"] {
        let i = org.index(name);
        org.start(i, &[]);
    }
    let gateway = org.wait_one_gateway(&["Alice", "Anna", "Rolf"], DEADLINE);
    assert_eq!(gateway, "Anna");
    // On site b the list will arrive at the gateway from the relay, and
    // at the member from its gateway.
    org.wait_one_gateway(&["Bob", "Berta"], DEADLINE);
    wait_for("Mallory roaming on the relay", DEADLINE, || {
        let s = org.status("Mallory");
        (s["role"] == "roaming" && s["relay"]["connected"] == true).then_some(())
    });
    for (of, peer) in [
        ("Alice", "Rolf"),
        ("Anna", "Rolf"),
        ("Bob", "Mallory"),
        ("Berta", "Mallory"),
        ("Berta", "Rolf"),
        ("Alice", "Mallory"),
        ("Mallory", "Bob"),
        ("Rolf", "Bob"),
        ("Berta", "Anna"),
        ("Alice", "Bob"),
    ] {
        org.wait_online(of, peer, DEADLINE);
    }
    // Before: both reach everyone.
    org.send_delivered("Mallory", "Bob", "before, from Mallory");
    org.send_delivered("Rolf", "Alice", "before, from Rolf");
    org.send_delivered("Rolf", "Bob", "before, from Rolf");

    // The admin revokes both while the daemons run.
    for name in ["Rolf", "Mallory"] {
        let user = org.member(name).user_id.clone();
        let out = cli_json(
            &org.member("Alice").home,
            &["org", "revoke", &user, "--json"],
        );
        assert!(
            out["revoked"]
                .as_array()
                .is_some_and(|r| r.iter().any(|u| u == user.as_str())),
            "{out}"
        );
    }

    // Mallory's relay connection is closed, and she cannot register again.
    let closed = wait_relay_error(&org, "Mallory", "revoked");
    println!("Mallory: {closed}");
    // (Refused by the relay, or not even tried once she holds the list.)
    let refused = wait_relay_error(&org, "Mallory", "revoked by the organisation");
    println!("Mallory again: {refused}");
    // Rolf: the LAN drops him, and the relay refuses him too.
    let rolf = org.member("Rolf").device_id.clone();
    for of in ["Alice", "Anna"] {
        wait_for(&format!("{of} drops Rolf"), DEADLINE, || {
            let online = peer_devices(&org, of)
                .into_iter()
                .any(|(d, online)| d == rolf && online);
            (!online).then_some(())
        });
    }
    let rolf_error = wait_relay_error(&org, "Rolf", "revoked");
    println!("Rolf: {rolf_error}");
    // Site b no longer lists either of them online.
    let mallory = org.member("Mallory").device_id.clone();
    for name in ["Bob", "Berta"] {
        wait_for(&format!("{name} sees both offline"), DEADLINE, || {
            let online = peer_devices(&org, name)
                .into_iter()
                .any(|(d, online)| online && (d == rolf || d == mallory));
            (!online).then_some(())
        });
    }
    // The relay forgot both.
    let status = org.relay_status();
    let listed = relay_all_devices(&status);
    assert!(
        !listed.contains(&rolf) && !listed.contains(&mallory),
        "{status}"
    );

    // What they send now is not delivered; members still talk to each other.
    for (from, to) in [("Mallory", "Bob"), ("Rolf", "Alice"), ("Rolf", "Bob")] {
        let out = cli(
            &org.member(from).home,
            &["send", to, "after", "--wait", "--timeout", "10", "--json"],
        );
        assert!(
            !out.status.success(),
            "{from} → {to} must not be delivered: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    org.send_delivered("Alice", "Bob", "members still talk");
    org.send_delivered("Berta", "Anna", "both ways");
    assert_eq!(
        org.received_texts("Bob", "Mallory"),
        ["before, from Mallory"]
    );
    assert_eq!(org.received_texts("Alice", "Rolf"), ["before, from Rolf"]);
    assert_eq!(org.received_texts("Bob", "Rolf"), ["before, from Rolf"]);
    // Rolf did not get back onto the LAN in the meantime.
    for of in ["Alice", "Anna"] {
        let back = peer_devices(&org, of)
            .into_iter()
            .any(|(d, online)| d == rolf && online);
        assert!(!back, "{of} lists Rolf online again");
    }
    // Every member holds the list (it reached the LAN and the other site).
    for name in ["Anna", "Bob", "Berta"] {
        assert!(
            org.member(name).home.join("revocations.bin").exists(),
            "{name} holds the revocation list"
        );
    }
}

#[test]
fn two_organisations_on_one_relay_never_see_each_other() {
    if skip() {
        return;
    }
    let mut org = Branches::with_orgs(&[
        OrgSpec {
            name: "Acme",
            served: true,
            sites: &[("a", "10.13.1", &["Alice"]), ("b", "10.13.2", &["Bob"])],
        },
        OrgSpec {
            name: "Globex",
            served: true,
            sites: &[("g", "10.13.3", &["Gina"]), ("h", "10.13.4", &["Hugo"])],
        },
    ]);
    org.start_all(&[]);
    org.wait_online("Alice", "Bob", DEADLINE);
    org.wait_online("Bob", "Alice", DEADLINE);
    org.wait_online("Gina", "Hugo", DEADLINE);
    org.wait_online("Hugo", "Gina", DEADLINE);
    org.send_delivered("Alice", "Bob", "acme internal");
    org.send_delivered("Gina", "Hugo", "globex internal");

    let acme: BTreeSet<String> = ["Alice", "Bob"]
        .map(|n| org.member(n).device_id.clone())
        .into();
    let globex: BTreeSet<String> = ["Gina", "Hugo"]
        .map(|n| org.member(n).device_id.clone())
        .into();
    for (name, foreign) in [
        ("Alice", &globex),
        ("Bob", &globex),
        ("Gina", &acme),
        ("Hugo", &acme),
    ] {
        let seen: Vec<_> = peer_devices(&org, name)
            .into_iter()
            .filter(|(d, _)| foreign.contains(d))
            .collect();
        assert!(
            seen.is_empty(),
            "{name} sees the other organisation: {seen:?}"
        );
    }
    for (from, to) in [("Alice", "Gina"), ("Hugo", "Bob")] {
        let error = send_refused(&org, from, to);
        assert!(error.contains("no peer matches"), "{from} → {to}: {error}");
    }

    let status = org.relay_status();
    assert_eq!(status["orgs"].as_array().map(Vec::len), Some(2), "{status}");
    for (i, expected) in [&acme, &globex].into_iter().enumerate() {
        let listed: BTreeSet<String> = relay_devices(&status, &org.org_ids[i])
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(&listed, expected, "organisation {i}: {status}");
    }
}

/// No namespaces needed: the CLI checks the relay value before anything.
#[test]
fn a_bad_relay_value_is_a_clear_cli_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    cli_json(home, &["init", "--name", "Tess", "--json"]);
    let fp = "a".repeat(10);
    let cases = [
        ("127.0.0.1:7443", "fingerprint"),
        ("127.0.0.1:7443#", "fingerprint"),
        (&format!("127.0.0.1:7443#{fp}") as &str, "fingerprint"),
        ("no-port#AAAA", "host:port"),
    ];
    for (value, needle) in cases {
        let out = cli(home, &["relay", "set", value]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(!out.status.success(), "relay set {value:?} accepted");
        assert!(stderr.contains("invalid relay"), "{value}: {stderr}");
        assert!(stderr.contains(needle), "{value}: {stderr}");
        println!("relay set {value:?}: {}", stderr.trim());
        // `run --relay` refuses it before starting.
        let stderr = run_must_fail(
            home,
            &[
                "run",
                "--no-mdns",
                "--listen",
                "127.0.0.1:0",
                "--relay",
                value,
            ],
        )
        .to_lowercase();
        assert!(stderr.contains("invalid relay"), "{value}: {stderr}");
    }
    assert!(
        !home.join("config.toml").exists()
            || !std::fs::read_to_string(home.join("config.toml"))
                .unwrap_or_default()
                .contains("relay"),
        "nothing was saved"
    );
}

/// Runs `tincan --home HOME ARGS...`, which must exit on its own (within a
/// generous deadline) with an error; its stderr.
fn run_must_fail(home: &std::path::Path, args: &[&str]) -> String {
    let mut child = std::process::Command::new(common::tincan_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tincan");
    let status = wait_for(&format!("tincan {args:?} to exit"), DEADLINE, || {
        child.try_wait().expect("wait")
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "tincan {args:?} succeeded: {stderr}");
    stderr
}

/// No namespaces needed: a membership copied from another user does not
/// make a device a member; the node says so and does not start.
#[test]
fn a_copied_membership_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (admin, thief) = (dir.path().join("admin"), dir.path().join("thief"));
    cli_json(&admin, &["init", "--name", "Ada", "--json"]);
    cli_json(&thief, &["init", "--name", "Tom", "--json"]);
    cli_json(&admin, &["org", "init", "--name", "Acme", "--json"]);
    std::fs::copy(admin.join("membership.txt"), thief.join("membership.txt")).expect("copy");
    let stderr = run_must_fail(&thief, &["run", "--no-mdns", "--listen", "127.0.0.1:0"]);
    println!("copied membership: {}", stderr.trim());
    assert!(stderr.contains("not for this identity"), "{stderr}");
    // Joining with someone else's file is refused just as clearly.
    let stderr = run_must_fail(
        &thief,
        &[
            "org",
            "join",
            admin.join("membership.txt").to_str().expect("utf-8"),
        ],
    );
    assert!(stderr.contains("not for this identity"), "{stderr}");
}

/// The hardest case: the revoked user's device is its site's gateway, so
/// the list cannot reach that site through it. The relay cuts it off; the
/// site's members take over the relay, learn the list there and drop it.
#[test]
fn a_revoked_gateway_is_cut_off_and_its_site_carries_on() {
    if skip() {
        return;
    }
    let mut org = Branches::new(&[
        ("a", "10.14.1", &["Alice"]),
        ("b", "10.14.2", &["Mallory", "Bob", "Berta"]),
    ]);
    let mallory = org.index("Mallory");
    org.start(mallory, &["--gateway", "prefer"]);
    for name in ["Alice", "Bob", "Berta"] {
        let i = org.index(name);
        org.start(i, &[]);
    }
    let gateway = org.wait_one_gateway(&["Mallory", "Bob", "Berta"], DEADLINE);
    assert_eq!(gateway, "Mallory");
    for (of, peer) in [("Alice", "Bob"), ("Alice", "Mallory"), ("Bob", "Alice")] {
        org.wait_online(of, peer, DEADLINE);
    }
    org.send_delivered("Alice", "Bob", "before");

    let user = org.member("Mallory").user_id.clone();
    cli_json(
        &org.member("Alice").home,
        &["org", "revoke", &user, "--json"],
    );
    let error = wait_relay_error(&org, "Mallory", "revoked");
    println!("Mallory (was gateway): {error}");
    // Site b elects a new gateway without her and holds the list.
    let new = org.wait_one_gateway(&["Bob", "Berta"], DEADLINE);
    println!("site b's new gateway: {new}");
    let device = org.member("Mallory").device_id.clone();
    for of in ["Bob", "Berta", "Alice"] {
        wait_for(&format!("{of} drops Mallory"), DEADLINE, || {
            let online = peer_devices(&org, of)
                .into_iter()
                .any(|(d, online)| d == device && online);
            (!online).then_some(())
        });
        assert!(org.member(of).home.join("revocations.bin").exists(), "{of}");
    }
    org.send_delivered("Alice", "Bob", "after");
    org.send_delivered("Berta", "Alice", "after, from b");
    let out = cli(
        &org.member("Mallory").home,
        &[
            "send",
            "Bob",
            "still here",
            "--wait",
            "--timeout",
            "10",
            "--json",
        ],
    );
    assert!(
        !out.status.success(),
        "Mallory's message must not be delivered"
    );
    assert!(!org
        .received_texts("Bob", "Mallory")
        .contains(&"still here".to_string()));
}

//! The command line: init, status (with and without a running relay),
//! metrics, graceful shutdown.

mod common;

use common::relay::{cli, Relay};
use common::{route_of, seal, Client, Org};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn init_prints_a_fingerprint_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("relay");
    let out = cli(&home, &["init", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let fingerprint = json["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert_eq!(fingerprint.len(), 32);
    assert!(fingerprint.parse::<tincan_core::RelayId>().is_ok());
    assert_eq!(json.as_object().map(|o| o.len()), Some(1));

    let again = cli(&home, &["init"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("--force"), "{err}");

    let forced = cli(&home, &["init", "--force"]);
    assert!(forced.status.success());
    let text = String::from_utf8_lossy(&forced.stdout);
    assert!(text.contains("fingerprint: "), "{text}");
    assert!(
        !text.contains(&fingerprint),
        "a new key has a new fingerprint"
    );
}

#[test]
fn status_without_a_relay_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(dir.path(), &["status", "--json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no relay is running"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn run_refuses_a_bad_org() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(
        dir.path(),
        &["run", "--listen", "127.0.0.1:0", "--org", "acme"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("organisation id"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_json_metrics_and_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    // The org given as its public key in hex.
    let hex = data_encoding::HEXLOWER.encode(&acme.key.public_key());
    let mut relay = Relay::start(
        dir.path(),
        &[],
        &["--org", &hex, "--metrics", "127.0.0.1:0"],
    );
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let b = Client::connect(relay.addr, &bob).await.expect("bob");
    // The pinned fingerprint is the relay's TLS device key's RelayId.
    let cert = tincan_transport::tls::peer_device_cert(&a.conn).expect("relay cert");
    assert_eq!(
        tincan_core::RelayId::from_public_key(&cert.device_key).to_string(),
        relay.fingerprint
    );
    let envelope = seal(&alice, &[&bob], "hello");
    a.route(route_of(&envelope, &[&bob])).await;
    b.close().await;

    let status = common::eventually("bob offline in status", || {
        let s = relay.status();
        async move {
            let offline = s["orgs"][0]["devices"]
                .as_array()?
                .iter()
                .any(|d| d["name"] == "bob" && d["online"] == false);
            offline.then_some(s)
        }
    })
    .await;
    eprintln!("{status:#}");
    assert_eq!(status["fingerprint"], relay.fingerprint.as_str());
    assert_eq!(status["listen"], relay.addr.to_string());
    assert_eq!(status["mail_total"], 0);
    let org = &status["orgs"][0];
    assert_eq!(org["org_id"], acme.id().to_string());
    assert_eq!(org["mail"], 0);
    assert!(org["sites"].as_array().expect("sites").is_empty());
    let devices = org["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 2);
    let alice_row = devices
        .iter()
        .find(|d| d["name"] == "alice")
        .expect("alice");
    assert_eq!(alice_row["device_id"], alice.id().to_string());
    assert_eq!(alice_row["user_id"], alice.identity.user_id().to_string());
    assert_eq!(alice_row["online"], true);
    assert_eq!(alice_row["direct"], true);
    assert!(alice_row["site"].is_null());
    let human = cli(dir.path(), &["status"]);
    assert!(human.status.success());
    assert!(String::from_utf8_lossy(&human.stdout).contains("alice"));

    let metrics = relay.metrics.expect("metrics addr");
    let mut stream = tokio::net::TcpStream::connect(metrics)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for name in [
        "tincan_relay_connections ",
        "tincan_relay_devices_online ",
        "tincan_relay_routes_total 1",
        "tincan_relay_answers_total{kind=\"receipt\"} 1",
        "tincan_relay_mail_stored_total",
        "tincan_relay_leases_granted_total",
        "tincan_relay_rate_limited_total",
    ] {
        assert!(body.contains(name), "metrics lack {name}:\n{body}");
    }

    // A second relay on the same home refuses to start.
    let second = cli(
        dir.path(),
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--org",
            &acme.id().to_string(),
        ],
    );
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already running"), "{err}");

    let code = relay.terminate();
    assert!(code.success(), "graceful exit: {code:?}");
    let (code, reason) = common::close_of(&a.conn).await.expect("alice closed");
    eprintln!("alice closed: {code:#x} {reason}");
    assert!(!dir.path().join("relay.sock").exists(), "socket removed");
}

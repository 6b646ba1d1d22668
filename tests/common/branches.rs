//! An organisation spread over NATed branch offices: a relay on the WAN,
//! sites behind their own NAT routers, one real `tincan` daemon per host,
//! all enrolled in one organisation. Built on the netns `Internet` harness;
//! everything it creates is removed when it is dropped (also on panic, when
//! the daemons' logs are printed first).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tincan_netsim::netns::SiteId;
use tincan_netsim::{Host, Internet};

use super::{cli, cli_json, relay_bin, wait_for, Daemon};

/// The relay's QUIC port on its WAN host.
pub const RELAY_PORT: u16 = 7443;

/// One member's device.
pub struct Member {
    /// Display name.
    pub name: String,
    /// Home directory.
    pub home: PathBuf,
    /// The host (namespace) it runs in.
    pub host: Host,
    /// The daemon, once started.
    pub daemon: Option<Daemon>,
    /// `whoami --json` user id.
    pub user_id: String,
    /// `whoami --json` device id.
    pub device_id: String,
    /// Index of its organisation in [`Branches::org_ids`].
    pub org: usize,
}

/// The running relay process.
pub struct Relay {
    /// Its home.
    pub home: PathBuf,
    /// `HOST:PORT#FINGERPRINT`.
    pub addr: String,
    child: Option<Child>,
    log: PathBuf,
    host_ns: String,
    orgs: Vec<String>,
    /// Extra `run` flags (e.g. a small `--file-quota-bytes`).
    extra: Vec<String>,
}

impl Relay {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("relay log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.host_ns])
            .arg(relay_bin())
            .arg("--home")
            .arg(&self.home)
            .args(["run", "--listen", &format!("0.0.0.0:{RELAY_PORT}")])
            .args(self.orgs.iter().flat_map(|org| ["--org", org.as_str()]))
            .args(&self.extra)
            .env("RUST_LOG", "tincan_relay=debug,info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn relay");
        self.child = Some(child);
        let home = self.home.clone();
        wait_for("relay control socket", Duration::from_secs(30), || {
            Command::new(relay_bin())
                .arg("--home")
                .arg(&home)
                .args(["status", "--json"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| ())
        });
    }

    /// SIGKILLs the relay.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same home.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts it again on the same home with extra `run` flags.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    /// The relay's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One organisation of [`Branches::with_orgs`].
pub struct OrgSpec<'a> {
    /// Its name (`tincan org init --name`).
    pub name: &'a str,
    /// Whether the relay serves it (`--org`).
    pub served: bool,
    /// Its sites: `(label, subnet prefix, member names)`.
    pub sites: &'a [(&'a str, &'a str, &'a [&'a str])],
}

/// The whole organisation. Field order matters for drop: daemons and the
/// relay stop before the namespaces go.
pub struct Branches {
    /// Every member, in creation order.
    pub members: Vec<Member>,
    /// The relay.
    pub relay: Relay,
    /// The sites, in creation order.
    pub sites: Vec<SiteId>,
    /// The organisation id (of the first organisation).
    pub org_id: String,
    /// Every organisation's id, in [`OrgSpec`] order.
    pub org_ids: Vec<String>,
    /// The namespaces (last, so it is dropped last).
    pub net: Internet,
    _dir: tempfile::TempDir,
}

impl Branches {
    /// Builds sites `(label, subnet prefix, member names)`; the first
    /// member of the first site is the admin. Daemons are not started yet.
    pub fn new(sites: &[(&str, &str, &[&str])]) -> Branches {
        Self::with_orgs(&[OrgSpec {
            name: "Acme",
            served: true,
            sites,
        }])
    }

    /// Builds several organisations on one relay, which serves those
    /// marked `served`. In each, the first member of its first site is its
    /// admin and enrols the others. Site labels, subnet prefixes and member
    /// names must be unique across all of them. Daemons are not started.
    pub fn with_orgs(orgs: &[OrgSpec]) -> Branches {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut net = Internet::new("198.51.100").expect("internet");
        let relay_host = net.add_host("relay").expect("relay host");
        let relay_home = dir.path().join("relay");
        let fp = cli_json_relay(&relay_home, &["init", "--json"]);
        let fingerprint = fp["fingerprint"].as_str().expect("fingerprint").to_string();
        let mut members = Vec::new();
        let mut site_ids = Vec::new();
        let mut org_ids = Vec::new();
        let mut served = Vec::new();
        for (org_index, spec) in orgs.iter().enumerate() {
            let first = members.len();
            for (label, prefix, names) in spec.sites {
                let site = net.add_site(label, prefix).expect("site");
                site_ids.push(site);
                for name in names.iter() {
                    let host = net
                        .add_host_to(site, &name.to_ascii_lowercase())
                        .expect("host");
                    let home = dir.path().join(name.to_ascii_lowercase());
                    let who = cli_json(&home, &["init", "--name", name, "--json"]);
                    members.push(Member {
                        name: name.to_string(),
                        home,
                        host,
                        daemon: None,
                        user_id: who["user_id"].as_str().expect("user id").to_string(),
                        device_id: who["device_id"].as_str().expect("device id").to_string(),
                        org: org_index,
                    });
                }
            }
            let admin = members[first].home.clone();
            let org = cli_json(&admin, &["org", "init", "--name", spec.name, "--json"]);
            let org_id = org["org_id"].as_str().expect("org id").to_string();
            for member in &members[first + 1..] {
                let file = dir.path().join(format!("{}.membership", member.name));
                let file_arg = file.to_str().expect("utf-8 path");
                cli_json(
                    &admin,
                    &["org", "issue", &member.user_id, "--out", file_arg, "--json"],
                );
                cli_json(&member.home, &["org", "join", file_arg, "--json"]);
            }
            if spec.served {
                served.push(org_id.clone());
            }
            org_ids.push(org_id);
        }
        let mut relay = Relay {
            home: relay_home.clone(),
            addr: format!("{}:{RELAY_PORT}#{fingerprint}", relay_host.ip),
            child: None,
            log: dir.path().join("relay.log"),
            host_ns: relay_host.ns.clone(),
            orgs: served,
            extra: Vec::new(),
        };
        relay.spawn();
        Branches {
            members,
            relay,
            sites: site_ids,
            org_id: org_ids[0].clone(),
            org_ids,
            net,
            _dir: dir,
        }
    }

    /// Starts every member's daemon with `--relay` and `extra` flags.
    pub fn start_all(&mut self, extra: &[&str]) {
        for i in 0..self.members.len() {
            self.start(i, extra);
        }
    }

    /// Starts member `i`'s daemon.
    pub fn start(&mut self, i: usize, extra: &[&str]) {
        let relay = self.relay.addr.clone();
        self.start_with_relay(i, Some(&relay), extra);
    }

    /// Starts member `i`'s daemon with `extra` flags and environment
    /// variables (test hooks).
    pub fn start_with_env(&mut self, i: usize, extra: &[&str], env: &[(&str, &str)]) {
        let relay = self.relay.addr.clone();
        let member = &mut self.members[i];
        let mut args = vec!["--name", member.name.as_str(), "--relay", relay.as_str()];
        args.extend_from_slice(extra);
        member.daemon = Some(Daemon::start_with_env(
            &member.home,
            &args,
            Some(&member.host.ns),
            env,
        ));
    }

    /// Starts member `i`'s daemon with `relay` as its `--relay` (or none).
    pub fn start_with_relay(&mut self, i: usize, relay: Option<&str>, extra: &[&str]) {
        let member = &mut self.members[i];
        let mut args = vec!["--name", member.name.as_str()];
        if let Some(relay) = relay {
            args.extend(["--relay", relay]);
        }
        args.extend_from_slice(extra);
        member.daemon = Some(Daemon::start(&member.home, &args, Some(&member.host.ns)));
    }

    /// Moves `name`'s host (daemon running) to site number `site`: its
    /// cable is replugged into that LAN and it gets a new address there.
    pub fn roam(&mut self, name: &str, site: usize) {
        let to = self.sites[site];
        let member = self
            .members
            .iter_mut()
            .find(|m| m.name == name)
            .expect("known member");
        self.net.move_host(&mut member.host, to).expect("move host");
    }

    /// The index of the member called `name` in [`Branches::members`].
    pub fn index(&self, name: &str) -> usize {
        self.members
            .iter()
            .position(|m| m.name == name)
            .expect("known member")
    }

    /// `tincan-relay status --json` of the running relay.
    pub fn relay_status(&self) -> Value {
        cli_json_relay(&self.relay.home, &["status", "--json"])
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.name == name)
            .expect("known member")
    }

    /// `status --json` of `name`.
    pub fn status(&self, name: &str) -> Value {
        cli_json(&self.member(name).home, &["status", "--json"])
    }

    /// Waits until exactly one of `names` is gateway and all others are its
    /// members; returns the gateway's name.
    pub fn wait_one_gateway(&self, names: &[&str], timeout: Duration) -> String {
        wait_for(&format!("one gateway among {names:?}"), timeout, || {
            let statuses: Vec<(String, Value)> = names
                .iter()
                .map(|n| (n.to_string(), self.status(n)))
                .collect();
            let gateways: Vec<&(String, Value)> = statuses
                .iter()
                .filter(|(_, s)| s["role"] == "gateway")
                .collect();
            let [(name, gateway)] = gateways.as_slice() else {
                return None;
            };
            let device = gateway["device_id"].clone();
            let all_follow = statuses
                .iter()
                .filter(|(n, _)| n != name)
                .all(|(_, s)| s["role"] == "member" && s["gateway"]["device_id"] == device);
            all_follow.then(|| name.clone())
        })
    }

    /// Waits until `of` lists `peer`'s device online.
    pub fn wait_online(&self, of: &str, peer: &str, timeout: Duration) {
        let device = self.member(peer).device_id.clone();
        let home = self.member(of).home.clone();
        wait_for(&format!("{peer} online at {of}"), timeout, || {
            let peers = cli_json(&home, &["peers", "--json"]);
            peers
                .as_array()?
                .iter()
                .find(|p| p["device_id"] == device.as_str() && p["online"] == true)?;
            Some(())
        });
    }

    /// Sends `text` from `from` to `to` (names, comma-separated) and waits
    /// until it is delivered; returns the message id.
    pub fn send_delivered(&self, from: &str, to: &str, text: &str) -> String {
        let home = &self.member(from).home;
        let out = cli(
            home,
            &["send", to, text, "--wait", "--timeout", "60", "--json"],
        );
        assert!(
            out.status.success(),
            "send {from} → {to} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sent: Value = serde_json::from_slice(&out.stdout).expect("send json");
        assert_eq!(sent["state"], "delivered", "{sent}");
        sent["id"].as_str().expect("id").to_string()
    }

    /// Texts `of` received from `peer`, oldest first.
    pub fn received_texts(&self, of: &str, peer: &str) -> Vec<String> {
        let rows = cli_json(&self.member(of).home, &["history", peer, "--json"]);
        rows.as_array()
            .map(|a| {
                a.iter()
                    .filter(|m| m["direction"] == "in")
                    .filter_map(|m| m["text"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Texts of `of`'s conversation with `peer`.
    pub fn history_texts(&self, of: &str, peer: &str) -> Vec<String> {
        let rows = cli_json(&self.member(of).home, &["history", peer, "--json"]);
        rows.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["text"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Branches {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for m in &self.members {
                if let Some(d) = &m.daemon {
                    eprintln!("===== log of {} =====\n{}", m.name, d.log());
                }
            }
            eprintln!("===== relay log =====\n{}", self.relay.log());
        }
        for m in &mut self.members {
            if let Some(d) = m.daemon.as_mut() {
                d.kill();
            }
        }
        self.relay.kill();
    }
}

/// Runs `tincan-relay --home HOME ARGS...` and parses its JSON output.
pub fn cli_json_relay(home: &Path, args: &[&str]) -> Value {
    let out = Command::new(relay_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("run tincan-relay");
    assert!(
        out.status.success(),
        "tincan-relay {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("relay json")
}

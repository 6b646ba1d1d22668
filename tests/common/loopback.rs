//! Users on loopback for the messenger-feature tests: each a temporary
//! home with an identity, a fixed 127.0.0.1 port, static peers and, while
//! it runs, a daemon (`--no-mdns`, so nothing leaves the host). Plus
//! [`Watch`], an event stream read straight from the control socket, which
//! (unlike `tincan watch`) says when it is subscribed, so no event sent
//! afterwards can be missed.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{cli, cli_json, free_udp_port, wait_for, Daemon};

/// Bounds a wait for connections, deliveries and state changes (a bound on
/// a hang, never a speed requirement).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One user's device.
pub struct User {
    /// Display name (`init --name`).
    pub name: &'static str,
    /// Its loopback port.
    pub port: u16,
    peers: Vec<u16>,
    extra: Vec<String>,
    /// Declared before `dir` so the daemon dies before its home goes.
    daemon: Option<Daemon>,
    dir: tempfile::TempDir,
}

impl User {
    /// A new home with an identity named `name`.
    pub fn init(name: &'static str) -> User {
        let user = User {
            name,
            port: free_udp_port(),
            peers: Vec::new(),
            extra: Vec::new(),
            daemon: None,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let who = cli_json(user.home(), &["init", "--name", name, "--json"]);
        assert_eq!(who["name"], name, "{who}");
        user
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// Dials `other` whenever this daemon runs.
    pub fn knows(&mut self, other: &User) {
        self.peers.push(other.port);
    }

    /// Extra `run` flags for every start.
    pub fn with_flags(&mut self, flags: &[&str]) {
        self.extra.extend(flags.iter().map(|f| f.to_string()));
    }

    /// Writes the home's `config.toml`.
    pub fn config(&self, toml: &str) {
        std::fs::write(self.home().join("config.toml"), toml).expect("write config.toml");
    }

    /// Starts (or restarts) the daemon on the same home and port.
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "{} is already running", self.name);
        let mut args = vec![
            "--no-mdns".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{}", self.port),
        ];
        for port in &self.peers {
            args.push("--peer".into());
            args.push(format!("127.0.0.1:{port}"));
        }
        args.extend(self.extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.daemon = Some(Daemon::start(self.home(), &args, None));
    }

    /// SIGKILLs the daemon.
    pub fn kill(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill();
        }
    }

    /// Runs a CLI command.
    pub fn run(&self, args: &[&str]) -> Output {
        cli(self.home(), args)
    }

    /// Runs a CLI command that must succeed with JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        cli_json(self.home(), args)
    }

    /// This user's id.
    pub fn user_id(&self) -> String {
        self.json(&["whoami", "--json"])["user_id"]
            .as_str()
            .expect("user_id")
            .to_string()
    }

    /// The `peers --json` entry displayed as `name`.
    pub fn peer(&self, name: &str) -> Option<Value> {
        self.json(&["peers", "--json"])
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    /// Waits until the peer entry of `name` satisfies `check`; returns it.
    pub fn wait_peer(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let what = format!("{} to see {name} {what}", self.name);
        wait_for(&what, DEADLINE, || self.peer(name).filter(|p| check(p)))
    }

    /// `history PEER --json`.
    pub fn history(&self, peer: &str) -> Vec<Value> {
        match self.json(&["history", peer, "--json"]) {
            Value::Array(items) => items,
            other => panic!("history --json is not an array: {other}"),
        }
    }

    /// Waits until the conversation with `peer` satisfies `done`.
    pub fn wait_history(
        &self,
        peer: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let what = format!("{} history with {peer}: {what}", self.name);
        wait_for(&what, DEADLINE, || {
            let history = self.history(peer);
            done(&history).then_some(history)
        })
    }

    /// Sends and waits until delivered; returns the message.
    pub fn send_delivered(&self, peer: &str, text: &str) -> Value {
        let sent = self.json(&["send", peer, text, "--wait", "--timeout", "30", "--json"]);
        assert_eq!(sent["state"], "delivered", "{sent}");
        sent
    }

    /// The `contact list --json` entry named `name`.
    pub fn contact(&self, name: &str) -> Option<Value> {
        self.json(&["contact", "list", "--json"])
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
    }

    /// Waits until the contact `name` is in `state`; returns the entry.
    pub fn wait_contact(&self, name: &str, state: &str) -> Value {
        let what = format!("{} to list {name} as {state}", self.name);
        wait_for(&what, DEADLINE, || {
            self.contact(name).filter(|c| c["state"] == state)
        })
    }

    /// Subscribes to this daemon's events.
    pub fn watch(&self) -> Watch {
        Watch::start(self.home())
    }

    /// Every daemon log of this home.
    pub fn logs(&self) -> String {
        super::daemon_logs(self.home())
    }
}

impl Drop for User {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("===== log of {} =====\n{}", self.name, self.logs());
        }
    }
}

/// Users that all know each other, started, each seeing every other online.
pub fn started(names: &[&'static str]) -> Vec<User> {
    started_with(names, |_| {})
}

/// [`started`], with `setup` run on each user before its daemon starts
/// (config files, flags).
pub fn started_with(names: &[&'static str], setup: impl Fn(&mut User)) -> Vec<User> {
    let mut users: Vec<User> = names.iter().map(|n| User::init(n)).collect();
    for i in 0..users.len() {
        for j in 0..users.len() {
            if i != j {
                let port = users[j].port;
                users[i].peers.push(port);
            }
        }
    }
    for user in &mut users {
        setup(user);
        user.start();
    }
    for a in &users {
        for b in &users {
            if a.name != b.name {
                a.wait_peer(b.name, "online", |p| p["online"] == true);
            }
        }
    }
    users
}

/// A daemon's event stream, from the control socket.
pub struct Watch {
    reader: BufReader<UnixStream>,
    /// A line read only in part when a wait ran out.
    partial: Vec<u8>,
}

impl Watch {
    /// Subscribes; returns once the daemon confirmed the subscription.
    pub fn start(home: &Path) -> Watch {
        let mut stream =
            UnixStream::connect(home.join("control.sock")).expect("connect to control.sock");
        stream
            .write_all(b"{\"cmd\":\"watch\"}\n")
            .expect("send watch");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("watch answer");
        let answer: Value = serde_json::from_str(&line).expect("watch answer is JSON");
        assert_eq!(answer["ok"], true, "{answer}");
        Watch {
            reader,
            partial: Vec::new(),
        }
    }

    /// The next event matching `check` within `timeout`, if any.
    pub fn next_matching(
        &mut self,
        timeout: Duration,
        mut check: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            // On a timeout the bytes read so far stay in `partial`.
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => return None,
                Ok(_) if self.partial.ends_with(b"\n") => {}
                Ok(_) | Err(_) => continue,
            }
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("non-JSON event ({e}): {line}"));
            if check(&event) {
                return Some(event);
            }
        }
    }

    /// Like [`Watch::next_matching`] with [`DEADLINE`], panicking with
    /// `what` when nothing matches.
    pub fn expect(&mut self, what: &str, check: impl FnMut(&Value) -> bool) -> Value {
        self.next_matching(DEADLINE, check)
            .unwrap_or_else(|| panic!("no {what} event within {DEADLINE:?}"))
    }
}

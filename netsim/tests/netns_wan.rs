//! The internet topology end to end: NATed sites reach a relay on the WAN but
//! not each other, sites may share a private prefix, a roaming host keeps its
//! processes, multicast can be blocked per LAN, WAN counters and impairments
//! act on the site's router, and dropping the internet removes every
//! namespace it created, also on panic.
//!
//! UDP checks re-execute this test binary inside a namespace as a helper
//! process ([`wan_helper`], an ignored test that does nothing unless
//! [`ROLE`] is set), as `netns_lan.rs` does. No assertion depends on timing.

use std::io::{BufRead, BufReader, Lines, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use tincan_netsim::{kill_child, netns_available, DelayProxy, Host, Internet};

/// Skips the calling test (with a printed line) when namespaces are missing.
macro_rules! require_netns {
    () => {
        if !netns_available() {
            println!("skipping: network namespaces unavailable (needs root and iproute2)");
            return;
        }
    };
}

/// The WAN prefix all tests use (one WAN bridge per test, so no clash).
const WAN: &str = "198.51.100";
/// The UDP port of the echo helpers.
const ECHO_PORT: u16 = 4000;
/// The mDNS group and port.
const MDNS: (Ipv4Addr, u16) = (Ipv4Addr::new(224, 0, 0, 251), 5353);
/// Tells [`wan_helper`] which part to play when re-executed in a host.
const ROLE: &str = "TINCAN_NETSIM_WAN_ROLE";
/// The role's argument (an address, or seconds to wait).
const ARG: &str = "TINCAN_NETSIM_WAN_ARG";

/// The names `ip netns list` shows (each line is `NAME [(id: N)]`).
fn netns_list() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// One ping with a one-second wait.
fn ping_once(from: &Host, to: Ipv4Addr) -> bool {
    from.command("ping")
        .args(["-c1", "-W1", &to.to_string()])
        .output()
        .expect("run ping")
        .status
        .success()
}

/// Whether `from` reaches `to`, allowing a few tries (the first packet may
/// wait for ARP). Only for checks that expect success.
fn reaches(from: &Host, to: Ipv4Addr) -> bool {
    (0..3).any(|_| ping_once(from, to))
}

/// A helper process in a host; killed when dropped.
struct Helper {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl Helper {
    /// Starts [`wan_helper`] in `host` as `role` with argument `arg`.
    fn spawn(host: &Host, role: &str, arg: &str) -> Helper {
        let mut child = helper_command(host, role, arg)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn helper");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Helper {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The rest of the first output line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) -> String {
        for line in self.lines.by_ref() {
            let line = line.expect("read helper output");
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
        panic!("helper ended without {prefix:?}: {:?}", self.seen);
    }

    /// Writes one line to the helper's stdin.
    fn send_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to helper");
    }

    /// Whether the helper process is still running.
    fn is_alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

fn helper_command(host: &Host, role: &str, arg: &str) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = host.command(exe);
    cmd.args(["--ignored", "--exact", "wan_helper", "--nocapture"])
        .env(ROLE, role)
        .env(ARG, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts a UDP echo server on `host`, port [`ECHO_PORT`], and waits until it
/// is bound.
fn echo_server(host: &Host) -> Helper {
    let mut echo = Helper::spawn(host, "echo", "");
    echo.wait_for("ready");
    echo
}

/// Sends a datagram from `from` to `to`:[`ECHO_PORT`] (a few tries); the
/// source address the echo server saw, or `None` if no reply came.
fn udp_probe(from: &Host, to: Ipv4Addr) -> Option<Ipv4Addr> {
    let out = helper_command(from, "probe", &format!("{to}:{ECHO_PORT}"))
        .output()
        .expect("run probe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen = stdout
        .lines()
        .find_map(|line| line.strip_prefix("reply seen "))
        .map(|addr| addr.trim().parse::<SocketAddr>().expect("seen address"));
    assert_eq!(
        out.status.success(),
        seen.is_some(),
        "probe output: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen.map(|addr| match addr.ip() {
        std::net::IpAddr::V4(ip) => ip,
        other => panic!("IPv6 source {other}"),
    })
}

#[test]
fn sites_reach_the_relay_but_not_each_other() {
    require_netns!();
    let mut net = Internet::new(WAN).expect("create internet");
    let relay = net.add_host("relay").expect("add relay");
    assert_eq!(relay.ip, Ipv4Addr::new(198, 51, 100, 10));
    let a = net.add_site("a", "10.1.1").expect("add site a");
    let b = net.add_site("b", "10.2.1").expect("add site b");
    let a1 = net.add_host_to(a, "a1").expect("add a1");
    let b1 = net.add_host_to(b, "b1").expect("add b1");
    assert_eq!(a1.ip, Ipv4Addr::new(10, 1, 1, 2));
    assert_eq!(
        net.router(a).expect("router").ip,
        Ipv4Addr::new(10, 1, 1, 1)
    );
    let (public_a, public_b) = (net.public_ip(a).unwrap(), net.public_ip(b).unwrap());

    // Out through the NAT: the relay sees the site's public address.
    assert!(reaches(&a1, relay.ip), "a1 cannot ping the relay");
    assert!(reaches(&b1, relay.ip), "b1 cannot ping the relay");
    let _relay_echo = echo_server(&relay);
    assert_eq!(udp_probe(&a1, relay.ip), Some(public_a));
    assert_eq!(udp_probe(&b1, relay.ip), Some(public_b));

    // Private addresses of another site are not routed; its router's public
    // address forwards nothing.
    assert!(!ping_once(&a1, b1.ip), "a1 pinged b1's private address");
    assert!(
        !ping_once(&a1, public_b),
        "b's router answered from outside"
    );
    let _b1_echo = echo_server(&b1);
    assert_eq!(udp_probe(&a1, public_b), None, "b forwarded a port");
    assert_eq!(udp_probe(&relay, public_b), None, "b forwarded a port");

    // Even a WAN host that routes b's private prefix to b's router gets in
    // nowhere: the router drops what nobody inside asked for.
    let via_b = public_b.to_string();
    let routed = relay
        .command("ip")
        .args(["route", "add", "10.2.1.0/24", "via", &via_b])
        .status()
        .expect("run ip route");
    assert!(routed.success(), "route on the relay");
    assert!(!ping_once(&relay, b1.ip), "relay pinged into site b");
    assert_eq!(udp_probe(&relay, b1.ip), None, "relay reached b1 by UDP");
    // Answers still come back through the same router.
    assert!(reaches(&b1, relay.ip), "b1 lost the relay");
}

#[test]
fn two_sites_may_share_a_private_prefix() {
    require_netns!();
    let mut net = Internet::new(WAN).expect("create internet");
    let relay = net.add_host("relay").expect("add relay");
    let x = net.add_site("x", "192.168.1").expect("add site x");
    let y = net.add_site("y", "192.168.1").expect("add site y");
    let x1 = net.add_host_to(x, "x1").expect("add x1");
    let x2 = net.add_host_to(x, "x2").expect("add x2");
    let y1 = net.add_host_to(y, "y1").expect("add y1");
    assert_eq!(x1.ip, y1.ip, "both sites hand out the same first address");

    let _echo = echo_server(&relay);
    assert_eq!(udp_probe(&x1, relay.ip), Some(net.public_ip(x).unwrap()));
    assert_eq!(udp_probe(&y1, relay.ip), Some(net.public_ip(y).unwrap()));
    // Each address means the host of the sender's own LAN.
    assert!(reaches(&x1, x2.ip), "x1 cannot reach x2 on its own LAN");
    assert!(!ping_once(&y1, x2.ip), "y1 reached x2 on another LAN");
}

#[test]
fn a_roaming_host_keeps_its_processes_and_reaches_the_relay() {
    require_netns!();
    let mut net = Internet::new(WAN).expect("create internet");
    let relay = net.add_host("relay").expect("add relay");
    let office = net.add_site("office", "10.1.1").expect("add office");
    let home = net.add_site("home", "192.168.1").expect("add home");
    // Same prefix as the office, another router (same gateway address).
    let cafe = net.add_site("cafe", "10.1.1").expect("add cafe");
    let colleague = net.add_host_to(office, "colleague").expect("add colleague");
    let mut laptop = net.add_host_to(office, "laptop").expect("add laptop");
    let _echo = echo_server(&relay);

    // A process started at the office, with one socket for all its life.
    let mut client = Helper::spawn(&laptop, "client", "");
    client.wait_for("ready");
    let target = format!("{}:{ECHO_PORT}", relay.ip);
    client.send_line(&target);
    let seen = client.wait_for("client ");
    assert_eq!(seen, format!("seen {}", net.public_ip(office).unwrap()));

    let at_office = laptop.ip;
    for (site, prefix) in [(home, "192.168.1."), (cafe, "10.1.1.")] {
        net.move_host(&mut laptop, site).expect("move laptop");
        assert!(
            laptop.ip.to_string().starts_with(prefix),
            "address {} after the move",
            laptop.ip
        );
        assert_eq!(laptop.current_ip().expect("read address"), laptop.ip);
        assert!(client.is_alive(), "the client died in the move");
        assert!(reaches(&laptop, relay.ip), "laptop cannot reach the relay");
        // The same socket now goes out through the new site's router.
        client.send_line(&target);
        let seen = client.wait_for("client ");
        assert_eq!(seen, format!("seen {}", net.public_ip(site).unwrap()));
    }
    assert_ne!(laptop.ip, at_office);
    assert!(
        !ping_once(&colleague, at_office),
        "the old address still answers at the office"
    );
    assert!(
        net.move_host(&mut laptop, cafe).is_err(),
        "moving to the current site must fail"
    );
}

/// Whether a datagram `from` sends to the mDNS group reaches `to`.
fn multicast_arrives(from: &Host, to: &Host) -> bool {
    let mut receiver = Helper::spawn(to, "mrecv", "3");
    receiver.wait_for("joined");
    let sent = helper_command(from, "msend", "").output().expect("send");
    assert!(sent.status.success(), "sender failed: {sent:?}");
    let result = receiver.wait_for("mrecv ");
    if result == "none" {
        return false;
    }
    assert_eq!(result, format!("from {}", from.ip), "unexpected sender");
    true
}

#[test]
fn multicast_can_be_blocked_per_lan() {
    require_netns!();
    let mut net = Internet::new(WAN).expect("create internet");
    let a = net.add_site("a", "10.1.1").expect("add site a");
    let b = net.add_site("b", "10.2.1").expect("add site b");
    let a1 = net.add_host_to(a, "a1").expect("add a1");
    let a2 = net.add_host_to(a, "a2").expect("add a2");
    let b1 = net.add_host_to(b, "b1").expect("add b1");

    assert!(multicast_arrives(&a1, &a2), "no multicast within site a");
    assert!(
        !multicast_arrives(&a1, &b1),
        "multicast crossed the routers"
    );
    net.set_multicast_blocked(a, true).expect("block");
    assert!(!multicast_arrives(&a1, &a2), "multicast passed the block");
    assert!(reaches(&a1, a2.ip), "blocking multicast cut unicast");
    net.set_multicast_blocked(a, true).expect("block again");
    net.set_multicast_blocked(a, false).expect("unblock");
    assert!(multicast_arrives(&a1, &a2), "no multicast after unblocking");
}

#[test]
fn wan_counters_and_impairments_act_on_the_site_router() {
    require_netns!();
    let mut net = Internet::new(WAN).expect("create internet");
    let relay = net.add_host("relay").expect("add relay");
    let a = net.add_site("a", "10.1.1").expect("add site a");
    let a1 = net.add_host_to(a, "a1").expect("add a1");
    assert!(reaches(&a1, relay.ip), "a1 cannot ping the relay");

    let (rx0, tx0) = net.wan_bytes(a).expect("counters");
    let pinged = a1
        .command("ping")
        .args(["-c3", "-W2", "-s", "1000", &relay.ip.to_string()])
        .output()
        .expect("run ping");
    assert!(pinged.status.success(), "{pinged:?}");
    let (rx1, tx1) = net.wan_bytes(a).expect("counters");
    assert!(tx1 >= tx0 + 3000, "tx {tx0} -> {tx1}");
    assert!(rx1 >= rx0 + 3000, "rx {rx0} -> {rx1}");

    // 100% loss is deterministic; 0 removes the rules again.
    net.set_wan_loss(a, 100).expect("set loss");
    assert!(!ping_once(&a1, relay.ip), "ping crossed a 100% lossy link");
    net.set_wan_loss(a, 10).expect("replace loss");
    net.set_wan_loss(a, 0).expect("remove loss");
    assert!(reaches(&a1, relay.ip), "no ping after removing loss");
    assert!(net.set_wan_loss(a, 101).is_err());

    let router = net.router(a).expect("router");
    let qdisc = || {
        let out = router
            .command("tc")
            .args(["qdisc", "show", "dev", "wan"])
            .output()
            .expect("run tc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    net.set_wan_rate(a, Some("10mbit")).expect("set rate");
    assert!(qdisc().contains("tbf"), "{}", qdisc());
    net.set_wan_rate(a, Some("2mbit")).expect("replace rate");
    assert!(reaches(&a1, relay.ip), "no ping through the rate limit");
    net.set_wan_rate(a, None).expect("remove rate");
    assert!(!qdisc().contains("tbf"), "{}", qdisc());
    net.set_wan_rate(a, None).expect("removing twice is fine");
    assert!(net.set_wan_rate(a, Some("fast")).is_err());

    net.set_wan_link(a, false).expect("pull wan cable");
    assert!(!ping_once(&a1, relay.ip), "ping crossed a pulled WAN cable");
    net.set_wan_link(a, true).expect("plug wan cable");
    assert!(reaches(&a1, relay.ip), "no ping after replugging the WAN");
}

#[test]
fn a_delay_proxy_forwards_both_ways() {
    require_netns!();
    let mut net = Internet::new(WAN).expect("create internet");
    let relay = net.add_host("relay").expect("add relay");
    let a = net.add_site("a", "10.1.1").expect("add site a");
    let a1 = net.add_host_to(a, "a1").expect("add a1");
    let _echo = echo_server(&relay);
    let target = SocketAddr::new(relay.ip.into(), ECHO_PORT);
    let delay = Duration::from_millis(150);
    let proxy = DelayProxy::start(&relay, ECHO_PORT + 1, target, delay).expect("start proxy");
    assert_eq!(
        proxy.addr(),
        SocketAddr::new(relay.ip.into(), ECHO_PORT + 1)
    );

    // The echo server sees the proxy (on the relay), not a's router, and the
    // answer comes back from the proxy's address. The round trip is printed,
    // not asserted (no timing assertions).
    let mut client = Helper::spawn(&a1, "client", "");
    client.wait_for("ready");
    for _ in 0..3 {
        let started = std::time::Instant::now();
        client.send_line(&proxy.addr().to_string());
        assert_eq!(client.wait_for("client "), format!("seen {}", relay.ip));
        println!("round trip through the proxy: {:?}", started.elapsed());
    }
    let names = net.namespaces();
    drop(proxy);
    drop(net);
    drop(client);
    let listed = netns_list();
    for name in &names {
        assert!(!listed.contains(name), "{name} left behind in {listed:?}");
    }
}

/// Builds an internet with a process running in a (moved) host; returns it,
/// its namespaces and the process.
fn busy_internet() -> (Internet, Vec<String>, Child) {
    let mut net = Internet::new(WAN).expect("create internet");
    net.add_host("relay").expect("add relay");
    let a = net.add_site("a", "10.1.1").expect("add site a");
    let b = net.add_site("b", "10.1.1").expect("add site b");
    let mut a1 = net.add_host_to(a, "a1").expect("add a1");
    net.add_host_to(b, "b1").expect("add b1");
    net.move_host(&mut a1, b).expect("move a1");
    let sleeper = a1.command("sleep").arg("600").spawn().expect("spawn sleep");
    // `ip netns exec` enters the namespace just after the spawn returns.
    let in_ns = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        a1.pids().expect("pids").contains(&sleeper.id())
    });
    assert!(in_ns, "sleep not among {:?}", a1.pids());
    let names = net.namespaces();
    // WAN bridge + relay, 2 × (LAN bridge + router), 2 hosts.
    assert_eq!(names.len(), 8, "{names:?}");
    let listed = netns_list();
    for name in &names {
        assert!(listed.contains(name), "{name} missing from {listed:?}");
    }
    (net, names, sleeper)
}

fn assert_gone(names: &[String]) {
    let listed = netns_list();
    for name in names {
        assert!(!listed.contains(name), "{name} left behind in {listed:?}");
    }
}

#[test]
fn dropping_the_internet_removes_its_namespaces() {
    require_netns!();
    let (net, names, mut sleeper) = busy_internet();
    drop(net);
    assert_gone(&names);
    let status = sleeper.wait().expect("wait for sleep");
    assert!(!status.success(), "sleep was not killed: {status}");

    // Also when the test panics while the internet is alive.
    let mut names = Vec::new();
    let mut child = None;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (_net, built, sleeper) = busy_internet();
        names = built;
        child = Some(sleeper);
        panic!("test failure with the internet alive");
    }));
    assert!(unwound.is_err());
    assert_gone(&names);
    if let Some(mut child) = child {
        kill_child(&mut child);
    }
}

/// Not a test on its own: the process the tests above start inside a
/// namespace. Without the role variable it does nothing.
///
/// Roles: `echo` (UDP echo on [`ECHO_PORT`], answering `seen <source>`),
/// `probe` (one datagram to `ARG`, a few tries; fails without an answer),
/// `client` (like `probe` for every address read from stdin, on one socket),
/// `mrecv` (joins the mDNS group, waits `ARG` seconds), `msend`.
#[test]
#[ignore = "helper process for the tests in this file"]
fn wan_helper() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let arg = std::env::var(ARG).unwrap_or_default();
    match role.as_str() {
        "echo" => {
            let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, ECHO_PORT)).expect("bind");
            println!("ready");
            let mut buf = [0u8; 1500];
            loop {
                let (_, peer) = socket.recv_from(&mut buf).expect("recv");
                let _ = socket.send_to(format!("seen {peer}").as_bytes(), peer);
            }
        }
        "probe" => {
            let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
            let target: SocketAddr = arg.parse().expect("probe target");
            let reply = ask(&socket, target).expect("no reply");
            println!("reply {reply}");
        }
        "client" => {
            let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
            println!("ready");
            for line in std::io::stdin().lines() {
                let target: SocketAddr = line.expect("stdin").trim().parse().expect("target");
                match ask(&socket, target) {
                    // Only the address: the port is the router's choice.
                    Some(reply) => {
                        let seen = reply.strip_prefix("seen ").expect("echo reply");
                        let seen: SocketAddr = seen.parse().expect("seen address");
                        println!("client seen {}", seen.ip());
                    }
                    None => println!("client timeout"),
                }
            }
        }
        "mrecv" => {
            let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, MDNS.1)).expect("bind");
            socket
                .join_multicast_v4(&MDNS.0, &Ipv4Addr::UNSPECIFIED)
                .expect("join group");
            println!("joined");
            let wait = arg.parse().expect("seconds");
            socket
                .set_read_timeout(Some(Duration::from_secs(wait)))
                .expect("timeout");
            let mut buf = [0u8; 64];
            loop {
                match socket.recv_from(&mut buf) {
                    Ok((len, peer)) if &buf[..len] == b"tincan-netsim" => {
                        println!("mrecv from {}", peer.ip());
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => {
                        println!("mrecv none");
                        break;
                    }
                }
            }
        }
        "msend" => {
            // A few copies: UDP may drop one even on a bridge.
            let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
            for _ in 0..3 {
                socket.send_to(b"tincan-netsim", MDNS).expect("send");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        other => panic!("unknown helper role {other:?}"),
    }
}

/// Sends to `target` until an answer comes (three tries, a second each).
fn ask(socket: &UdpSocket, target: SocketAddr) -> Option<String> {
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    for _ in 0..3 {
        socket.send_to(b"probe", target).expect("send");
        if let Ok((len, peer)) = socket.recv_from(&mut buf) {
            if peer == target {
                return Some(String::from_utf8_lossy(&buf[..len]).into_owned());
            }
        }
    }
    None
}

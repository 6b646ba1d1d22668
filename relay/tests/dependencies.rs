//! The relay never links the node (issue 14): it depends on tincan-core and
//! tincan-transport only, so a relay build carries no mDNS, desktop
//! notifications, progress bars or OS-account lookups, and a change to the
//! node cannot break or bloat the relay.
//!
//! Checked on the workspace `Cargo.lock`, which lists every package's
//! dependencies (a workspace member's dev-dependencies too, and optional
//! ones whatever the features): what is unreachable from `tincan-relay`
//! there cannot be linked into it. `cargo test` refreshes the lock before
//! it builds, so the lock read here is the one the relay was built with.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// Packages the relay must never reach, and why each would be there.
const BANNED: &[(&str, &str)] = &[
    ("tincan-node", "the node daemon itself"),
    ("mdns-sd", "LAN discovery (node only)"),
    ("notify-rust", "desktop notifications (node only)"),
    ("indicatif", "CLI progress bars (node only)"),
    ("whoami", "OS account names (node only)"),
];

fn read(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

#[test]
fn the_manifest_does_not_name_the_node() {
    let manifest = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    let tables = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut named = Vec::new();
    for table in tables {
        if let Some(deps) = manifest.get(table).and_then(|t| t.as_table()) {
            named.extend(deps.keys().map(|k| format!("[{table}] {k}")));
        }
    }
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for (target, value) in targets {
            for table in tables {
                if let Some(deps) = value.get(table).and_then(|t| t.as_table()) {
                    named.extend(
                        deps.keys()
                            .map(|k| format!("[target.{target}.{table}] {k}")),
                    );
                }
            }
        }
    }
    let banned: Vec<&String> = named
        .iter()
        .filter(|dep| {
            BANNED
                .iter()
                .any(|(name, _)| dep.ends_with(&format!("] {name}")))
        })
        .collect();
    assert!(
        banned.is_empty(),
        "relay/Cargo.toml depends on {banned:?}: use tincan-core or tincan-transport instead"
    );
}

/// One package of the lock: `name version`, and the same form of each of
/// its dependencies.
type Graph = BTreeMap<String, Vec<String>>;

/// The lock's dependency graph, keyed by `name version`.
fn lock_graph(lock: &toml::Table) -> Graph {
    let packages = lock
        .get("package")
        .and_then(|p| p.as_array())
        .expect("Cargo.lock has [[package]] entries");
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for package in packages {
        let name = package["name"].as_str().expect("package name");
        let version = package["version"].as_str().expect("package version");
        versions.entry(name).or_default().push(version);
    }
    // A dependency is written `name` when only one version of it is
    // locked, else `name version` (and `(source)` when that is ambiguous).
    let key = |dep: &str| -> String {
        let mut words = dep.split(' ');
        let name = words.next().unwrap_or_default();
        match words.next() {
            Some(version) => format!("{name} {version}"),
            None => match versions.get(name).map(Vec::as_slice) {
                Some([version]) => format!("{name} {version}"),
                _ => panic!("Cargo.lock names {name:?} without a version, and it has not one"),
            },
        }
    };
    packages
        .iter()
        .map(|package| {
            let this = format!(
                "{} {}",
                package["name"].as_str().unwrap_or_default(),
                package["version"].as_str().unwrap_or_default()
            );
            let deps = package
                .get("dependencies")
                .and_then(|d| d.as_array())
                .map(|deps| deps.iter().filter_map(|d| d.as_str()).map(key).collect())
                .unwrap_or_default();
            (this, deps)
        })
        .collect()
}

/// Every package reachable from `root`, with the path that reaches it.
fn reachable(graph: &Graph, root: &str) -> BTreeMap<String, Vec<String>> {
    let mut paths = BTreeMap::from([(root.to_string(), vec![root.to_string()])]);
    let mut queue = VecDeque::from([root.to_string()]);
    while let Some(package) = queue.pop_front() {
        let path = paths[&package].clone();
        for dep in graph.get(&package).into_iter().flatten() {
            if !paths.contains_key(dep) {
                let mut longer = path.clone();
                longer.push(dep.clone());
                paths.insert(dep.clone(), longer);
                queue.push_back(dep.clone());
            }
        }
    }
    paths
}

#[test]
fn the_relay_reaches_neither_the_node_nor_its_desktop_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let graph = lock_graph(&read(&root.join("Cargo.lock")));
    let relay = graph
        .keys()
        .find(|k| k.split(' ').next() == Some("tincan-relay"))
        .expect("tincan-relay is in Cargo.lock")
        .clone();
    let reached = reachable(&graph, &relay);
    // The walk itself works: the relay does reach what it should.
    let names: BTreeSet<&str> = reached.keys().filter_map(|k| k.split(' ').next()).collect();
    for expected in ["tincan-core", "tincan-transport", "quinn", "rusqlite"] {
        assert!(
            names.contains(expected),
            "the relay should reach {expected}"
        );
    }
    let found: Vec<String> = reached
        .iter()
        .filter_map(|(package, path)| {
            let name = package.split(' ').next()?;
            let (_, why) = BANNED.iter().find(|(banned, _)| *banned == name)?;
            Some(format!("{name}, {why}: {}", path.join(" -> ")))
        })
        .collect();
    assert!(
        found.is_empty(),
        "the relay must not link the node or its desktop crates (issue 14); reached:\n{}",
        found.join("\n")
    );
}

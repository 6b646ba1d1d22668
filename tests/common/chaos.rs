//! What the chaos test (`tests/chaos.rs`) needs besides the branch
//! harness: a small seeded PRNG for its schedule, the seeds and size it runs
//! (from the environment), and read-only checks of a stopped node's or
//! relay's SQLite database.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed PRNG, so a
/// seed names one schedule exactly, on every platform and build. Not for
/// anything secret.
pub struct Rng(u64);

impl Rng {
    /// A generator that always yields the same sequence for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// `count` distinct items of `items`, in random order.
    pub fn sample<T: Copy>(&mut self, items: &[T], count: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        let mut out = Vec::new();
        while out.len() < count && !pool.is_empty() {
            out.push(pool.swap_remove(self.below(pool.len())));
        }
        out
    }
}

/// Which seeds to run and how many messages each, from the environment:
/// `TINCAN_CHAOS_SEED` replays one seed, `TINCAN_CHAOS_SEEDS=n` runs `n`
/// fresh seeds, otherwise `defaults`; `TINCAN_CHAOS_MESSAGES` is the size
/// (`default_messages` otherwise).
pub struct Plan {
    /// The seeds, in the order they run.
    pub seeds: Vec<u64>,
    /// Messages per seed.
    pub messages: usize,
}

impl Plan {
    /// Reads the plan; a malformed variable is a test failure (a typo must
    /// not silently run the small default).
    pub fn from_env(defaults: &[u64], default_messages: usize) -> Plan {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, text: String| -> u64 {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={text:?} is not a number: {e}"))
        };
        let messages = var("TINCAN_CHAOS_MESSAGES")
            .map(|v| number("TINCAN_CHAOS_MESSAGES", v) as usize)
            .unwrap_or(default_messages);
        let seeds = if let Some(seed) = var("TINCAN_CHAOS_SEED") {
            vec![number("TINCAN_CHAOS_SEED", seed)]
        } else if let Some(count) = var("TINCAN_CHAOS_SEEDS") {
            let count = number("TINCAN_CHAOS_SEEDS", count);
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default();
            let mut fresh = Rng::new(clock ^ u64::from(std::process::id()));
            (0..count).map(|_| fresh.next_u64() >> 16).collect()
        } else {
            defaults.to_vec()
        };
        Plan { seeds, messages }
    }
}

/// Opens a database read-only (its process must be stopped: the check
/// should see what a restart would find on disk).
fn open(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()))
}

/// `PRAGMA integrity_check` of the database at `db`: `"ok"` when sound,
/// otherwise SQLite's list of problems.
pub fn integrity_check(db: &Path) -> String {
    let conn = open(db);
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .unwrap_or_else(|e| panic!("integrity_check on {}: {e}", db.display()));
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("integrity_check on {}: {e}", db.display()));
    rows.join("; ")
}

/// Outgoing messages of the stopped node at `db` whose history and outbox
/// disagree, one line each: still `queued` or `sent` with no outbox row
/// left, so nothing will ever retry them or tell their sender otherwise.
pub fn stuck_without_outbox(db: &Path) -> Vec<String> {
    let conn = open(db);
    let sql = "SELECT lower(hex(m.id)) || ' is ' || m.state || ' with no outbox row'
               FROM messages m
               WHERE m.direction = 'out' AND m.state IN ('queued', 'sent')
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id)
               GROUP BY m.id";
    let mut stmt = conn
        .prepare(sql)
        .unwrap_or_else(|e| panic!("{sql} on {}: {e}", db.display()));
    stmt.query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{sql} on {}: {e}", db.display()))
}

//! File transfer on the node: disk I/O and the stream protocol around
//! `tincan_core::file`, which decides.
//!
//! # Layout
//! - [`source`]: the sender's side of the disk — scanning the paths the
//!   user named into a manifest (hashing every chunk), and reading one
//!   chunk to serve, refusing it when the file changed or vanished.
//! - [`sink`]: the receiver's side — staging files (`NAME.part`), chunk
//!   writes, the final whole-file check, fsync and the move into place
//!   under a free name (`name (1).ext`), never overwriting anything.
//! - [`staged`]: the staged files of one incoming transfer while its
//!   chunks arrive — open handles, write-behind, the running whole-file
//!   hash.
//! - [`stream`]: the QUIC stream format of file requests and uploads
//!   (`tincan_transport::file_stream`, shared with the relay).
//! - [`cache`]: a branch gateway's bounded disk cache of sealed content
//!   pulled from the relay, served to its LAN (one WAN copy per branch).
//! - [`view`]: the JSON shape of a transfer (`tincan file list --json`).
//!
//! The actor part (`node/actor/file.rs`) ties these to the core state
//! machine, the store and the outbox. Everything here is blocking file
//! I/O meant for `spawn_blocking`, or an async stream helper; none of it
//! holds more than one chunk in memory.

pub mod cache;
pub mod sink;
pub mod source;
pub mod staged;
pub mod view;

use std::path::PathBuf;

pub use tincan_transport::file_stream as stream;
pub use view::TransferView;

/// Test hook, read by the *sending* daemon at start: the index of one
/// chunk whose sealed bytes it corrupts (one flipped byte), once, to show
/// that receivers detect and re-fetch bad chunks. Never set it outside
/// tests.
pub const TEST_CORRUPT_CHUNK_ENV: &str = "TINCAN_TEST_CORRUPT_CHUNK";

/// Test hook, read by a *gateway* daemon at start: the index of one chunk
/// whose copy in its relay cache it corrupts (one flipped byte), once, to
/// show that a bad cached copy is dropped and fetched again. Never set it
/// outside tests.
pub const TEST_CORRUPT_CACHED_CHUNK_ENV: &str = "TINCAN_TEST_CORRUPT_CACHED_CHUNK";

/// File-transfer settings of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilesConfig {
    /// Where accepted files go without `--to` (`None`: the platform's
    /// download folder, else `downloads/` in the home).
    pub downloads: Option<PathBuf>,
    /// Users (full ids only) whose offers are accepted without asking,
    /// into [`Self::downloads`].
    pub auto_accept: Vec<tincan_core::UserId>,
    /// Upload cap in bytes per second for serving chunks (0 = none).
    pub upload_limit: u64,
    /// Cap in bytes per second on file bytes this node sends to the relay
    /// (its own uploads as gateway or roaming device, and its members'
    /// uploads it forwards as gateway); 0 = none.
    pub wan_upload_limit: u64,
    /// Most bytes the gateway's cache of relay content keeps on disk.
    pub cache_limit: u64,
}

/// Default [`FilesConfig::cache_limit`].
pub const DEFAULT_CACHE_LIMIT: u64 = 2 << 30;

/// Parses a byte rate such as `"20MiB"`, `"500k"`, `"1000000"` (per
/// second). Units: k/M/G (×1000) and KiB/MiB/GiB (×1024); `B` optional.
pub fn parse_rate(text: &str) -> Option<u64> {
    let t = text.trim().trim_end_matches("/s").trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().trim_end_matches('b') {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    (num >= 0.0).then_some((num * mult) as u64)
}

/// The manifest entry of a file holding `data`, in chunks of `chunk`
/// bytes (for the unit tests of the modules here).
#[cfg(test)]
pub(crate) fn test_entry(path: &str, data: &[u8], chunk: usize) -> tincan_core::file::FileEntry {
    tincan_core::file::FileEntry {
        path: path.into(),
        size: data.len() as u64,
        hash: *blake3::hash(data).as_bytes(),
        chunks: data
            .chunks(chunk)
            .map(|c| *blake3::hash(c).as_bytes())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("1000"), Some(1000));
        assert_eq!(parse_rate("20MiB"), Some(20 * 1024 * 1024));
        assert_eq!(parse_rate("1.5 MB/s"), Some(1_500_000));
        assert_eq!(parse_rate("500k"), Some(500_000));
        assert_eq!(parse_rate("fast"), None);
        assert_eq!(parse_rate("3 parsecs"), None);
    }
}

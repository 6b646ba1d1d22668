//! File transfer: what travels end to end, and the receiver's pull state
//! machine.
//!
//! # Shape of a transfer
//! 1. The sender scans the files, hashes them in chunks of
//!    [`CHUNK_SIZE`] bytes and builds a [`Manifest`] (relative paths,
//!    sizes, whole-file and per-chunk blake3 hashes). It picks a random
//!    per-transfer content key and sends a [`FileOffer`] inside a sealed
//!    envelope ([`crate::Content::FileOffer`]): transfer id, display name,
//!    size, file count, chunk size, the manifest's blake3 hash and the key.
//!    File names therefore only ever travel encrypted: in the sealed offer
//!    and in the manifest, which is encrypted with the content key.
//! 2. The recipient accepts (or rejects: [`FileAction::Rejected`]) and
//!    pulls: first the encrypted manifest ([`FileRequest::Manifest`],
//!    checked against the offer's hash), then the chunks
//!    ([`FileRequest::Chunk`]), several in flight ([`Pull`]).
//! 3. Every chunk is sealed with ChaCha20-Poly1305 under the content key
//!    ([`crypt`]); the nonce is derived from the chunk's index, so a chunk
//!    always encrypts to the same bytes. The receiver decrypts and checks
//!    the chunk's blake3 hash on arrival; a bad chunk is fetched again, a
//!    bounded number of times.
//! 4. When every chunk is verified, the node checks each whole file's hash
//!    from disk, moves it into place and tells the sender
//!    ([`FileAction::Done`]). Either side may cancel at any time
//!    ([`FileAction::Cancelled`]).
//!
//! The encrypted manifest and encrypted chunks are all a third party ever
//! needs to hold: a relay or gateway cache can store and serve exactly
//! these bytes without being able to read them, addressed by transfer id
//! and chunk index (cross-branch transfer builds on that).
//!
//! # Layout
//! - [`manifest`]: the manifest, path sanitizing, the chunk layout.
//! - [`crypt`]: sealing and opening chunks and the manifest.
//! - [`chunk_set`]: the verified-chunk bitmap.
//! - [`pull`]: the receiver's state machine (window, retries, completion).
//! - [`rate`]: throughput meter and upload token bucket (time as input).

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod chunk_set;
pub mod crypt;
pub mod manifest;
pub mod pull;
pub mod rate;
pub mod state;

pub use chunk_set::ChunkSet;
pub use crypt::ChunkError;
pub use manifest::{file_name, FileEntry, Layout, Manifest, ManifestError};
pub use pull::{Fetch, FetchFault, Pull, PullConfig, PullEvent, PullState};
pub use rate::{RateMeter, TokenBucket};
pub use state::{ParseTransferStateError, TransferState};

/// Bytes of plaintext per chunk (the last chunk of a file may be shorter).
pub const CHUNK_SIZE: u32 = 1024 * 1024;

/// Largest chunk size a receiver accepts in an offer.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

/// Largest encoded manifest accepted (about 500,000 chunks of hashes).
pub const MAX_MANIFEST_LEN: u32 = 16 * 1024 * 1024;

/// Most files one transfer may carry.
pub const MAX_FILES: u32 = 100_000;

/// Longest display name of an offer, in bytes.
pub const MAX_OFFER_NAME: usize = 1024;

crate::id::random_id!(
    /// A 128-bit transfer id, chosen at random by the sender.
    TransferId
);

/// An offer of files, sealed inside an envelope to the recipient devices.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    /// The transfer.
    pub transfer: TransferId,
    /// What to show: [`manifest::offer_name`] of the manifest's top-level
    /// entries (the file or folder name, or `NAME and N more`); the
    /// receiver refuses a manifest that gives another name.
    pub name: String,
    /// Total bytes of all files.
    pub size: u64,
    /// Number of files.
    pub count: u32,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// blake3 of the encoded manifest (its plaintext).
    pub manifest_hash: [u8; 32],
    /// Length of the encoded manifest (plaintext).
    pub manifest_len: u32,
    /// The content key that seals the manifest and every chunk.
    pub key: [u8; 32],
}

impl fmt::Debug for FileOffer {
    // The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileOffer")
            .field("transfer", &self.transfer)
            .field("size", &self.size)
            .field("count", &self.count)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

/// Why an offer is unacceptable as received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// The display name is empty, too long or holds control, bidi or
    /// invisible characters.
    #[error("offer name is empty, too long or holds control, bidi or invisible characters")]
    BadName,
    /// The chunk size is zero or above [`MAX_CHUNK_SIZE`].
    #[error("offer chunk size {0} is out of range")]
    BadChunkSize(u32),
    /// The manifest length is zero or above [`MAX_MANIFEST_LEN`].
    #[error("offer manifest length {0} is out of range")]
    BadManifestLen(u32),
    /// More than [`MAX_FILES`] files.
    #[error("offer has {0} files, more than {MAX_FILES}")]
    TooManyFiles(u32),
}

impl FileOffer {
    /// Checks the fields a receiver relies on before showing the offer.
    pub fn validate(&self) -> Result<(), OfferError> {
        if self.name.trim().is_empty()
            || self.name.len() > MAX_OFFER_NAME
            || self.name.chars().any(|c| {
                c.is_control() || crate::name::is_bidi_control(c) || crate::name::is_invisible(c)
            })
        {
            return Err(OfferError::BadName);
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(OfferError::BadChunkSize(self.chunk_size));
        }
        if self.manifest_len == 0 || self.manifest_len > MAX_MANIFEST_LEN {
            return Err(OfferError::BadManifestLen(self.manifest_len));
        }
        if self.count > MAX_FILES {
            return Err(OfferError::TooManyFiles(self.count));
        }
        Ok(())
    }
}

/// What one side tells the other about a transfer, end to end (sealed in
/// an envelope: [`crate::Content::FileControl`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FileAction {
    /// The recipient declined the offer.
    Rejected,
    /// The side that sends this gave up on the transfer.
    Cancelled,
    /// The recipient has every file, verified and in place.
    Done,
    /// The side that sends this failed for good: the recipient (disk
    /// full, verification, ...) or the sender (the relay refused its
    /// upload, a file changed).
    Failed(String),
}

/// A request on a file stream, from the receiver to the side that holds
/// the encrypted bytes (the sender now; a relay cache later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FileRequest {
    /// The sealed manifest of `transfer`.
    Manifest {
        /// The transfer.
        transfer: TransferId,
    },
    /// Sealed chunk `index` (global over all files, in manifest order).
    Chunk {
        /// The transfer.
        transfer: TransferId,
        /// The chunk.
        index: u64,
    },
    /// Chunk `index` again: the copy this side got did not verify, so a
    /// cache on the way (a branch gateway) must drop its copy and fetch a
    /// fresh one instead of serving the same bad bytes again.
    ChunkAgain {
        /// The transfer.
        transfer: TransferId,
        /// The chunk.
        index: u64,
    },
}

impl FileRequest {
    /// The transfer asked about.
    pub fn transfer(&self) -> TransferId {
        match self {
            FileRequest::Manifest { transfer }
            | FileRequest::Chunk { transfer, .. }
            | FileRequest::ChunkAgain { transfer, .. } => *transfer,
        }
    }

    /// The item asked for: `None` = the manifest, else the chunk index.
    pub fn item(&self) -> Option<u64> {
        match self {
            FileRequest::Manifest { .. } => None,
            FileRequest::Chunk { index, .. } | FileRequest::ChunkAgain { index, .. } => {
                Some(*index)
            }
        }
    }

    /// The same request without the "again" mark (what the holder serves).
    pub fn plain(&self) -> FileRequest {
        match *self {
            FileRequest::ChunkAgain { transfer, index } => FileRequest::Chunk { transfer, index },
            ref other => other.clone(),
        }
    }

    /// Most sealed bytes an answer to this request can carry, whatever
    /// the offer said (for hops that never see the offer).
    pub fn max_sealed_len(&self) -> usize {
        match self.item() {
            None => MAX_MANIFEST_LEN as usize + crypt::TAG_LEN,
            Some(_) => MAX_CHUNK_SIZE as usize + crypt::TAG_LEN,
        }
    }
}

/// An upload of one sealed item to the relay (sender → its gateway →
/// relay, or roaming sender → relay): `len` raw bytes follow this header
/// on the stream (see `tincan_node::file::stream`). The relay stores them
/// under (organisation, transfer, item) until the mail TTL; the bytes are
/// the same sealed manifest or chunk a LAN holder serves, so no hop can
/// read them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUpload {
    /// The transfer.
    pub transfer: TransferId,
    /// `None` = the sealed manifest, else the chunk index.
    pub item: Option<u64>,
    /// Sealed bytes that follow.
    pub len: u32,
}

impl FileUpload {
    /// Whether `len` is within what a sealed item of this kind can be.
    pub fn len_ok(&self) -> bool {
        let max = match self.item {
            None => MAX_MANIFEST_LEN as usize + crypt::TAG_LEN,
            Some(_) => MAX_CHUNK_SIZE as usize + crypt::TAG_LEN,
        };
        self.len as usize >= crypt::TAG_LEN && self.len as usize <= max
    }
}

/// Why the holder will not serve a [`FileRequest`]. File names never
/// appear here (files are named by their manifest index), so these
/// answers carry nothing a user typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FileRefusal {
    /// No such transfer here (or not offered to the asking device).
    Unknown,
    /// The transfer was cancelled.
    Cancelled,
    /// The chunk index or request is out of range.
    BadRequest,
    /// File `file` of the manifest changed since it was offered.
    Changed {
        /// Index in the manifest's file list.
        file: u32,
    },
    /// File `file` of the manifest is gone.
    Vanished {
        /// Index in the manifest's file list.
        file: u32,
    },
    /// File `file` could not be read.
    Unreadable {
        /// Index in the manifest's file list.
        file: u32,
        /// The OS error, e.g. "permission denied".
        error: String,
    },
    /// The holder is busy or failed transiently; ask again later.
    Busy,
    /// The relay's file storage for the organisation is full: the upload
    /// was not stored.
    QuotaExceeded {
        /// The organisation's quota, in bytes.
        limit: u64,
    },
}

impl FileRefusal {
    /// Whether asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, FileRefusal::Busy)
    }

    /// A sentence for the sender's user when the refusal is about the
    /// sender's own files (changed, vanished or unreadable since the
    /// offer), naming them through `name_of`; `None` for any other refusal.
    /// [`Self::describe`] says the same from the recipient's side.
    pub fn describe_own(&self, name_of: impl Fn(u32) -> String) -> Option<String> {
        Some(match self {
            FileRefusal::Changed { file } => {
                format!("{} changed since it was offered", name_of(*file))
            }
            FileRefusal::Vanished { file } => {
                format!("{} vanished before it was sent", name_of(*file))
            }
            FileRefusal::Unreadable { file, error } => {
                format!("cannot read {}: {error}", name_of(*file))
            }
            _ => return None,
        })
    }

    /// A sentence for the user, naming files through `name_of`.
    pub fn describe(&self, name_of: impl Fn(u32) -> String) -> String {
        match self {
            FileRefusal::Unknown => "the sender no longer offers this transfer".into(),
            FileRefusal::Cancelled => "the sender cancelled the transfer".into(),
            FileRefusal::BadRequest => "the sender refused a malformed request".into(),
            FileRefusal::Changed { file } => {
                format!(
                    "{} changed on the sender since it was offered",
                    name_of(*file)
                )
            }
            FileRefusal::Vanished { file } => {
                format!(
                    "{} vanished on the sender before it was sent",
                    name_of(*file)
                )
            }
            FileRefusal::Unreadable { file, error } => {
                format!("the sender cannot read {}: {error}", name_of(*file))
            }
            FileRefusal::Busy => "the sender is busy".into(),
            FileRefusal::QuotaExceeded { limit } => format!(
                "the relay's file storage for this organisation is full (quota {limit} bytes); the upload was refused"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> FileOffer {
        FileOffer {
            transfer: TransferId([1; 16]),
            name: "report.pdf".into(),
            size: 10,
            count: 1,
            chunk_size: CHUNK_SIZE,
            manifest_hash: [0; 32],
            manifest_len: 100,
            key: [9; 32],
        }
    }

    #[test]
    fn the_sender_is_told_about_its_own_files_only() {
        let name = |f: u32| format!("f{f}");
        let changed = FileRefusal::Changed { file: 1 };
        assert_eq!(
            changed.describe_own(name).as_deref(),
            Some("f1 changed since it was offered")
        );
        let unreadable = FileRefusal::Unreadable {
            file: 2,
            error: "denied".into(),
        };
        assert_eq!(
            unreadable.describe_own(name).as_deref(),
            Some("cannot read f2: denied")
        );
        assert_eq!(FileRefusal::Busy.describe_own(name), None);
        assert_eq!(
            FileRefusal::QuotaExceeded { limit: 1 }.describe_own(name),
            None
        );
    }

    #[test]
    fn transfer_ids_round_trip() {
        let id = TransferId([0xcd; 16]);
        assert_eq!(id.to_string().parse::<TransferId>(), Ok(id));
        assert!("xyz".parse::<TransferId>().is_err());
    }

    #[test]
    fn offers_are_validated_and_keys_not_logged() {
        assert_eq!(offer().validate(), Ok(()));
        let bad = FileOffer {
            name: "a\u{1b}[2J".into(),
            ..offer()
        };
        assert_eq!(bad.validate(), Err(OfferError::BadName));
        // Shown names never reorder or hide text: `photo<RLO>gpj.exe`
        // would read as `photoexe.jpg`.
        for name in ["photo\u{202E}gpj.exe", "report\u{200B}.pdf", "\u{2066}a"] {
            let bad = FileOffer {
                name: name.into(),
                ..offer()
            };
            assert_eq!(bad.validate(), Err(OfferError::BadName), "{name:?}");
        }
        let bad = FileOffer {
            chunk_size: 0,
            ..offer()
        };
        assert_eq!(bad.validate(), Err(OfferError::BadChunkSize(0)));
        let bad = FileOffer {
            manifest_len: MAX_MANIFEST_LEN + 1,
            ..offer()
        };
        assert!(matches!(bad.validate(), Err(OfferError::BadManifestLen(_))));
        assert!(!format!("{:?}", offer()).contains("9, 9"));
    }

    #[test]
    fn requests_name_their_item_and_uploads_bound_their_length() {
        let t = TransferId([3; 16]);
        let again = FileRequest::ChunkAgain {
            transfer: t,
            index: 4,
        };
        assert_eq!(again.item(), Some(4));
        assert_eq!(again.transfer(), t);
        assert_eq!(
            again.plain(),
            FileRequest::Chunk {
                transfer: t,
                index: 4
            }
        );
        assert_eq!(FileRequest::Manifest { transfer: t }.item(), None);
        assert_eq!(again.max_sealed_len(), MAX_CHUNK_SIZE as usize + 16);
        let up = |item, len| FileUpload {
            transfer: t,
            item,
            len,
        };
        assert!(up(Some(0), CHUNK_SIZE + 16).len_ok());
        assert!(!up(Some(0), MAX_CHUNK_SIZE + 17).len_ok());
        assert!(!up(Some(0), 3).len_ok(), "shorter than a tag");
        assert!(up(None, MAX_MANIFEST_LEN + 16).len_ok());
        let full = FileRefusal::QuotaExceeded { limit: 1024 };
        assert!(!full.is_transient());
        assert!(full
            .describe(|_| String::new())
            .contains("quota 1024 bytes"));
    }

    #[test]
    fn refusals_describe_files_by_name() {
        let text = FileRefusal::Changed { file: 2 }.describe(|i| format!("file{i}"));
        assert!(text.contains("file2") && text.contains("changed"));
        assert!(FileRefusal::Busy.is_transient());
        assert!(!FileRefusal::Cancelled.is_transient());
    }
}

//! The manifest of a transfer: every file's relative path, size, whole-file
//! hash and per-chunk hashes, plus the folders (so empty ones arrive too).
//!
//! Paths are relative, `/`-separated, and made of *safe components*: not
//! empty, not `.` or `..`, no `/`, `\` or NUL, no control characters, at
//! most 255 bytes each. The receiver re-checks every path
//! ([`Manifest::validate`]) before writing anything, so a hostile sender
//! cannot reach outside the destination folder. Chunks are numbered
//! globally: file 0's chunks first, then file 1's, and so on
//! ([`Layout`]).
//!
//! What is saved is what was shown: an offer's display name is derived
//! from the manifest's top-level entries ([`offer_name`]) and the receiver
//! refuses a manifest whose entries do not give the name it showed, so an
//! offer shown as `photo.jpg` cannot create `.bash_profile`. A hidden
//! top-level entry (leading dot) is always named in the offer, never
//! folded into "and N more"; components with bidi or invisible characters
//! are unsafe (they would show as another name).

use serde::{Deserialize, Serialize};

use super::{FileOffer, MAX_FILES};

/// Longest path component, in bytes (the limit of common file systems).
pub const MAX_COMPONENT: usize = 255;
/// Longest relative path, in bytes.
pub const MAX_PATH: usize = 4096;
/// Deepest nesting of a path.
pub const MAX_DEPTH: usize = 64;

/// One file of a transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path, `/`-separated (see the module docs).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// blake3 of the whole file.
    pub hash: [u8; 32],
    /// blake3 of each chunk, in order.
    pub chunks: Vec<[u8; 32]>,
}

/// Everything a receiver needs to fetch and check the files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Folders to create (parents of files are implied), relative paths.
    pub dirs: Vec<String>,
    /// The files, in chunk order.
    pub files: Vec<FileEntry>,
}

/// The name of file `file` of `manifest` for messages to the user, or
/// `file #N` when the manifest (or the file) is not known.
pub fn file_name(manifest: Option<&Manifest>, file: u32) -> String {
    manifest
        .and_then(|m| m.files.get(file as usize))
        .map(|f| f.path.clone())
        .unwrap_or_else(|| format!("file #{file}"))
}

/// Why a path or manifest is unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A path is absolute, empty, too long or has an unsafe component.
    #[error("unsafe path {0:?}")]
    UnsafePath(String),
    /// Two entries have the same path, or a file is also used as a folder.
    #[error("path {0:?} is used twice")]
    Duplicate(String),
    /// A file's chunk hashes do not fit its size.
    #[error("file {0:?} has the wrong number of chunk hashes")]
    ChunkCount(String),
    /// The manifest disagrees with the offer (size, count, chunk size).
    #[error("manifest does not match the offer: {0}")]
    OfferMismatch(&'static str),
    /// The offer showed another name than the manifest's entries give.
    #[error("the offer was shown as {shown:?} but its files are {saved:?}")]
    NameMismatch {
        /// The offer's display name.
        shown: String,
        /// The name the manifest's top-level entries give ([`offer_name`]).
        saved: String,
    },
    /// More than [`MAX_FILES`] files or folders.
    #[error("too many files")]
    TooManyFiles,
    /// The bytes do not decode to a manifest.
    #[error("manifest does not decode")]
    Malformed,
}

/// Whether `name` is a safe single path component: not empty, `.` or
/// `..`; no `/`, `\`, NUL or control character; no bidi or invisible
/// character (see [`crate::name`]); at most [`MAX_COMPONENT`] bytes.
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= MAX_COMPONENT
        && !name.chars().any(|c| {
            c == '/'
                || c == '\\'
                || c == '\0'
                || c.is_control()
                || crate::name::is_bidi_control(c)
                || crate::name::is_invisible(c)
        })
}

/// Whether a path component is hidden on Unix (a leading dot).
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// The display name of an offer of these top-level entries (in manifest
/// order): the first entry, then `and N more` for the others, and every
/// hidden entry among those others by name, so none is saved unseen:
/// `photo.jpg`, `photos and 2 more`, `a.txt and 2 more, including
/// .bashrc, .profile`. Empty for no entries.
pub fn offer_name(tops: &[String]) -> String {
    let Some((first, rest)) = tops.split_first() else {
        return String::new();
    };
    if rest.is_empty() {
        return first.clone();
    }
    let mut name = format!("{first} and {} more", rest.len());
    let hidden: Vec<&str> = rest
        .iter()
        .map(String::as_str)
        .filter(|t| is_hidden(t))
        .collect();
    if !hidden.is_empty() {
        name.push_str(", including ");
        name.push_str(&hidden.join(", "));
    }
    name
}

/// Checks a relative `/`-separated path made of safe components.
pub fn check_path(path: &str) -> Result<(), ManifestError> {
    let bad = || ManifestError::UnsafePath(path.to_string());
    if path.is_empty() || path.len() > MAX_PATH || path.starts_with('/') {
        return Err(bad());
    }
    let mut depth = 0;
    for component in path.split('/') {
        depth += 1;
        if !is_safe_component(component) || depth > MAX_DEPTH {
            return Err(bad());
        }
    }
    Ok(())
}

/// The first component of a relative path (its top-level entry).
pub fn top_level(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

impl Manifest {
    /// Encodes the manifest (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a manifest; exactly one, no trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ManifestError> {
        match postcard::take_from_bytes::<Manifest>(bytes) {
            Ok((manifest, [])) => Ok(manifest),
            _ => Err(ManifestError::Malformed),
        }
    }

    /// Total bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Checks every path and chunk count, and that the manifest matches
    /// the `offer` it was fetched for.
    pub fn validate(&self, offer: &FileOffer) -> Result<(), ManifestError> {
        if self.files.len() + self.dirs.len() > 2 * MAX_FILES as usize {
            return Err(ManifestError::TooManyFiles);
        }
        if self.chunk_size != offer.chunk_size || self.chunk_size == 0 {
            return Err(ManifestError::OfferMismatch("chunk size"));
        }
        if self.files.len() != offer.count as usize {
            return Err(ManifestError::OfferMismatch("file count"));
        }
        let mut total: u64 = 0;
        let mut files = std::collections::BTreeSet::new();
        for file in &self.files {
            check_path(&file.path)?;
            let expected = file.size.div_ceil(u64::from(self.chunk_size));
            if file.chunks.len() as u64 != expected {
                return Err(ManifestError::ChunkCount(file.path.clone()));
            }
            total = total
                .checked_add(file.size)
                .ok_or(ManifestError::OfferMismatch("size"))?;
            if !files.insert(file.path.as_str()) {
                return Err(ManifestError::Duplicate(file.path.clone()));
            }
        }
        if total != offer.size {
            return Err(ManifestError::OfferMismatch("size"));
        }
        let mut dirs = std::collections::BTreeSet::new();
        for dir in &self.dirs {
            check_path(dir)?;
            if files.contains(dir.as_str()) || !dirs.insert(dir.as_str()) {
                return Err(ManifestError::Duplicate(dir.clone()));
            }
        }
        let saved = offer_name(&self.top_levels());
        if offer.name != saved {
            return Err(ManifestError::NameMismatch {
                shown: offer.name.clone(),
                saved,
            });
        }
        // No file may also be the parent folder of another entry.
        for path in files.iter().chain(dirs.iter()) {
            let mut prefix = String::new();
            let mut parts = path.split('/').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    break;
                }
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                if files.contains(prefix.as_str()) {
                    return Err(ManifestError::Duplicate(prefix));
                }
            }
        }
        Ok(())
    }

    /// The top-level entries (first path components), in first-seen order.
    pub fn top_levels(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for path in self
            .files
            .iter()
            .map(|f| f.path.as_str())
            .chain(self.dirs.iter().map(String::as_str))
        {
            let top = top_level(path);
            if !out.iter().any(|t| t == top) {
                out.push(top.to_string());
            }
        }
        out
    }
}

/// Where each global chunk lies: which file, at which offset, how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    chunk_size: u64,
    /// First global chunk index of each file, plus the total at the end.
    starts: Vec<u64>,
    sizes: Vec<u64>,
}

/// One chunk's place in the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlace {
    /// Index of the file in the manifest.
    pub file: u32,
    /// Byte offset in that file.
    pub offset: u64,
    /// Plaintext length.
    pub len: u32,
}

impl Layout {
    /// The layout of `manifest`.
    pub fn new(manifest: &Manifest) -> Self {
        let chunk_size = u64::from(manifest.chunk_size.max(1));
        let mut starts = Vec::with_capacity(manifest.files.len() + 1);
        let mut next = 0u64;
        for file in &manifest.files {
            starts.push(next);
            next += file.size.div_ceil(chunk_size);
        }
        starts.push(next);
        Self {
            chunk_size,
            starts,
            sizes: manifest.files.iter().map(|f| f.size).collect(),
        }
    }

    /// Total number of chunks.
    pub fn chunks(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    /// Where chunk `index` lies, or `None` when out of range.
    pub fn place(&self, index: u64) -> Option<ChunkPlace> {
        if index >= self.chunks() {
            return None;
        }
        // The last file whose first chunk is <= index (empty files share
        // their start with the next file, so skip to the last of them).
        let file = self.starts.partition_point(|&s| s <= index) - 1;
        let local = index - self.starts[file];
        let offset = local * self.chunk_size;
        let len = (self.sizes[file] - offset).min(self.chunk_size);
        Some(ChunkPlace {
            file: file as u32,
            offset,
            len: len as u32,
        })
    }

    /// The global index range of file `file`'s chunks.
    pub fn file_chunks(&self, file: u32) -> std::ops::Range<u64> {
        let f = file as usize;
        match (self.starts.get(f), self.starts.get(f + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{TransferId, CHUNK_SIZE};

    fn entry(path: &str, size: u64, chunk: u32) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            hash: [0; 32],
            chunks: vec![[0; 32]; size.div_ceil(u64::from(chunk)) as usize],
        }
    }

    fn offer_for(m: &Manifest) -> FileOffer {
        FileOffer {
            transfer: TransferId([0; 16]),
            name: offer_name(&m.top_levels()),
            size: m.total_size(),
            count: m.files.len() as u32,
            chunk_size: m.chunk_size,
            manifest_hash: [0; 32],
            manifest_len: 1,
            key: [0; 32],
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "a/../b",
            "a//b",
            "./a",
            "a/.",
            "a\\b",
            "a\u{0}b",
            "a\nb",
            "a\u{1b}b",
            "photo\u{202E}gpj.exe",
            "report\u{200B}.pdf",
            "dir/\u{2066}x",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["a", "a b.txt", "dir/sub/file.tar.gz", ".hidden", "ünï/cödé"] {
            assert_eq!(check_path(good), Ok(()), "{good:?}");
        }
        assert!(check_path(&"x".repeat(256)).is_err());
        assert!(check_path(&vec!["d"; 65].join("/")).is_err());
    }

    #[test]
    fn offer_names_name_every_hidden_entry() {
        let tops = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(offer_name(&tops(&["photo.jpg"])), "photo.jpg");
        assert_eq!(offer_name(&tops(&[".bashrc"])), ".bashrc");
        assert_eq!(offer_name(&tops(&["a", "b", "c"])), "a and 2 more");
        assert_eq!(
            offer_name(&tops(&["a.txt", ".bashrc", "b", ".profile"])),
            "a.txt and 3 more, including .bashrc, .profile"
        );
        assert_eq!(offer_name(&[]), "");
    }

    #[test]
    fn what_is_saved_is_what_was_shown() {
        let m = Manifest {
            chunk_size: 4,
            dirs: vec![],
            files: vec![entry(".bash_profile", 9, 4)],
        };
        let shown_as_photo = FileOffer {
            name: "photo.jpg".into(),
            ..offer_for(&m)
        };
        assert_eq!(
            m.validate(&shown_as_photo),
            Err(ManifestError::NameMismatch {
                shown: "photo.jpg".into(),
                saved: ".bash_profile".into(),
            })
        );
        // A hidden file may travel when the offer says so.
        assert_eq!(m.validate(&offer_for(&m)), Ok(()));

        // Nor can it hide behind "and 1 more".
        let two = Manifest {
            chunk_size: 4,
            dirs: vec![],
            files: vec![entry("photo.jpg", 4, 4), entry(".bash_profile", 4, 4)],
        };
        let vague = FileOffer {
            name: "photo.jpg and 1 more".into(),
            ..offer_for(&two)
        };
        assert!(matches!(
            two.validate(&vague),
            Err(ManifestError::NameMismatch { .. })
        ));
        assert_eq!(
            offer_for(&two).name,
            "photo.jpg and 1 more, including .bash_profile"
        );
        assert_eq!(two.validate(&offer_for(&two)), Ok(()));
        // Hidden files inside a named folder are the folder's business.
        let folder = Manifest {
            chunk_size: 4,
            dirs: vec![],
            files: vec![entry("project/.gitignore", 4, 4)],
        };
        assert_eq!(offer_for(&folder).name, "project");
        assert_eq!(folder.validate(&offer_for(&folder)), Ok(()));
    }

    #[test]
    fn manifests_must_match_the_offer_and_be_consistent() {
        let m = Manifest {
            chunk_size: 4,
            dirs: vec!["top/empty".into()],
            files: vec![entry("top/a", 9, 4), entry("top/b", 0, 4)],
        };
        let offer = offer_for(&m);
        assert_eq!(m.validate(&offer), Ok(()));
        assert_eq!(Manifest::from_bytes(&m.to_bytes()), Ok(m.clone()));
        assert_eq!(m.top_levels(), ["top"]);

        let mut wrong = m.clone();
        wrong.files[0].chunks.pop();
        assert!(matches!(
            wrong.validate(&offer),
            Err(ManifestError::ChunkCount(_))
        ));
        let mut dup = m.clone();
        dup.files[1].path = "top/a".into();
        assert!(matches!(
            dup.validate(&offer),
            Err(ManifestError::Duplicate(_))
        ));
        let mut parent = m.clone();
        parent.files[1].path = "top/a/inner".into();
        assert!(matches!(
            parent.validate(&offer),
            Err(ManifestError::Duplicate(_))
        ));
        let mut evil = m.clone();
        evil.files[1].path = "../../.bashrc".into();
        assert!(matches!(
            evil.validate(&offer),
            Err(ManifestError::UnsafePath(_))
        ));
        let mut bigger = offer.clone();
        bigger.size += 1;
        assert!(matches!(
            m.validate(&bigger),
            Err(ManifestError::OfferMismatch("size"))
        ));
        assert_eq!(
            Manifest::from_bytes(&[0xff, 0xff, 0xff]),
            Err(ManifestError::Malformed)
        );
    }

    #[test]
    fn layout_maps_global_chunks_to_files() {
        let m = Manifest {
            chunk_size: 4,
            dirs: vec![],
            files: vec![
                entry("a", 9, 4),
                entry("empty", 0, 4),
                entry("b", 4, 4),
                entry("c", 1, 4),
            ],
        };
        let layout = Layout::new(&m);
        assert_eq!(layout.chunks(), 5);
        let places: Vec<_> = (0..5)
            .map(|i| layout.place(i).map(|p| (p.file, p.offset, p.len)))
            .collect();
        assert_eq!(
            places,
            [
                Some((0, 0, 4)),
                Some((0, 4, 4)),
                Some((0, 8, 1)),
                Some((2, 0, 4)),
                Some((3, 0, 1)),
            ]
        );
        assert_eq!(layout.place(5), None);
        assert_eq!(layout.file_chunks(1), 3..3);
        assert_eq!(layout.file_chunks(2), 3..4);
        assert_eq!(layout.file_chunks(9), 0..0);
        let big = Manifest {
            chunk_size: CHUNK_SIZE,
            dirs: vec![],
            files: vec![entry("big", 4 << 30, CHUNK_SIZE)],
        };
        assert_eq!(Layout::new(&big).chunks(), 4096);
    }
}

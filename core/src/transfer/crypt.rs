//! Sealing of file bytes with the transfer's content key.
//!
//! # Format
//! - A sealed chunk is `ChaCha20-Poly1305(key, nonce, aad, plaintext) ||
//!   tag` (16-byte tag at the end), so it is 16 bytes longer than the
//!   plaintext.
//! - nonce = `b"chnk"` || chunk index (u64 big-endian); for the manifest
//!   `b"mnfs"` || 0. Each (key, nonce) pair seals exactly one plaintext:
//!   the key is random per transfer and the sender refuses to serve a
//!   chunk whose bytes no longer match the manifest's hash, so the same
//!   nonce never covers two different plaintexts. Sealing is therefore
//!   deterministic, which is what lets a cache hold one copy per chunk.
//! - aad = `b"tincan file v1\0"` || transfer id || kind byte (`c`/`m`), so
//!   a chunk of one transfer cannot be passed off for another.
//! - After opening, the plaintext's blake3 must equal the manifest's hash
//!   for that chunk ([`open_chunk`] checks both).

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};

use super::TransferId;

/// Bytes a sealed item is longer than its plaintext.
pub const TAG_LEN: usize = 16;

const AAD_CONTEXT: &[u8] = b"tincan file v1\0";

/// Why sealed bytes did not open to the expected plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The bytes have the wrong length for this chunk.
    #[error("chunk has {got} bytes, expected {expected}")]
    Length {
        /// Bytes received.
        got: usize,
        /// Bytes expected (plaintext + tag).
        expected: usize,
    },
    /// Authentication failed: tampered or corrupted in transit.
    #[error("chunk does not decrypt (corrupted or tampered)")]
    Decrypt,
    /// It decrypted, but the plaintext's blake3 differs from the manifest.
    #[error("chunk hash does not match the manifest")]
    Hash,
}

fn nonce(kind: &[u8; 4], index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(kind);
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::from(n)
}

fn aad(transfer: &TransferId, kind: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_CONTEXT.len() + 17);
    aad.extend_from_slice(AAD_CONTEXT);
    aad.extend_from_slice(&transfer.0);
    aad.push(kind);
    aad
}

fn seal(key: &[u8; 32], nonce: &Nonce, aad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(&Key::from(*key));
    // Encryption fails only for inputs above 256 GiB; chunks are far below.
    match cipher.encrypt_inout_detached(nonce, aad, buf.as_mut_slice().into()) {
        Ok(tag) => {
            buf.extend_from_slice(tag.as_slice());
            buf
        }
        Err(_) => Vec::new(),
    }
}

fn open(
    key: &[u8; 32],
    nonce: &Nonce,
    aad: &[u8],
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, ChunkError> {
    let body = buf.len().checked_sub(TAG_LEN).ok_or(ChunkError::Decrypt)?;
    let tag = Tag::try_from(&buf[body..]).map_err(|_| ChunkError::Decrypt)?;
    let cipher = ChaCha20Poly1305::new(&Key::from(*key));
    cipher
        .decrypt_inout_detached(nonce, aad, buf[..body].as_mut().into(), &tag)
        .map_err(|_| ChunkError::Decrypt)?;
    buf.truncate(body);
    Ok(buf)
}

/// Seals chunk `index` of `transfer` in place (the buffer grows by
/// [`TAG_LEN`]).
pub fn seal_chunk(
    key: &[u8; 32],
    transfer: &TransferId,
    index: u64,
    plaintext: Vec<u8>,
) -> Vec<u8> {
    seal(key, &nonce(b"chnk", index), &aad(transfer, b'c'), plaintext)
}

/// Opens sealed chunk `index` and checks its length (`len` plaintext
/// bytes) and its blake3 `hash`; returns the plaintext.
pub fn open_chunk(
    key: &[u8; 32],
    transfer: &TransferId,
    index: u64,
    len: u32,
    hash: &[u8; 32],
    sealed: Vec<u8>,
) -> Result<Vec<u8>, ChunkError> {
    let expected = len as usize + TAG_LEN;
    if sealed.len() != expected {
        return Err(ChunkError::Length {
            got: sealed.len(),
            expected,
        });
    }
    let plain = open(key, &nonce(b"chnk", index), &aad(transfer, b'c'), sealed)?;
    if blake3::hash(&plain).as_bytes() != hash {
        return Err(ChunkError::Hash);
    }
    Ok(plain)
}

/// Seals the encoded manifest.
pub fn seal_manifest(key: &[u8; 32], transfer: &TransferId, encoded: Vec<u8>) -> Vec<u8> {
    seal(key, &nonce(b"mnfs", 0), &aad(transfer, b'm'), encoded)
}

/// Opens a sealed manifest and checks its blake3 `hash` (from the offer).
pub fn open_manifest(
    key: &[u8; 32],
    transfer: &TransferId,
    hash: &[u8; 32],
    sealed: Vec<u8>,
) -> Result<Vec<u8>, ChunkError> {
    let plain = open(key, &nonce(b"mnfs", 0), &aad(transfer, b'm'), sealed)?;
    if blake3::hash(&plain).as_bytes() != hash {
        return Err(ChunkError::Hash);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const T: TransferId = TransferId([3; 16]);

    #[test]
    fn chunks_round_trip_and_are_deterministic() {
        let plain = b"hello chunk".to_vec();
        let hash = *blake3::hash(&plain).as_bytes();
        let sealed = seal_chunk(&KEY, &T, 5, plain.clone());
        assert_eq!(sealed.len(), plain.len() + TAG_LEN);
        assert_eq!(sealed, seal_chunk(&KEY, &T, 5, plain.clone()));
        assert_ne!(sealed, seal_chunk(&KEY, &T, 6, plain.clone()));
        let len = plain.len() as u32;
        assert_eq!(
            open_chunk(&KEY, &T, 5, len, &hash, sealed.clone()),
            Ok(plain)
        );
        // Another index, transfer or key does not open it.
        assert_eq!(
            open_chunk(&KEY, &T, 6, len, &hash, sealed.clone()),
            Err(ChunkError::Decrypt)
        );
        let other = TransferId([4; 16]);
        assert_eq!(
            open_chunk(&KEY, &other, 5, len, &hash, sealed.clone()),
            Err(ChunkError::Decrypt)
        );
        assert_eq!(
            open_chunk(&[8; 32], &T, 5, len, &hash, sealed.clone()),
            Err(ChunkError::Decrypt)
        );
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert_eq!(
            open_chunk(&KEY, &T, 5, len, &hash, flipped),
            Err(ChunkError::Decrypt)
        );
        assert!(matches!(
            open_chunk(&KEY, &T, 5, len + 1, &hash, sealed.clone()),
            Err(ChunkError::Length { .. })
        ));
        assert_eq!(
            open_chunk(&KEY, &T, 5, len, &[0; 32], sealed),
            Err(ChunkError::Hash)
        );
        assert_eq!(
            open_chunk(&KEY, &T, 0, 0, &[0; 32], Vec::new()),
            Err(ChunkError::Length {
                got: 0,
                expected: TAG_LEN
            })
        );
    }

    #[test]
    fn manifests_round_trip_and_differ_from_chunks() {
        let plain = b"manifest".to_vec();
        let hash = *blake3::hash(&plain).as_bytes();
        let sealed = seal_manifest(&KEY, &T, plain.clone());
        assert_eq!(
            open_manifest(&KEY, &T, &hash, sealed.clone()),
            Ok(plain.clone())
        );
        assert_ne!(sealed, seal_chunk(&KEY, &T, 0, plain));
        assert_eq!(
            open_manifest(&KEY, &T, &[1; 32], sealed),
            Err(ChunkError::Hash)
        );
        assert_eq!(
            open_manifest(&KEY, &T, &hash, vec![1, 2]),
            Err(ChunkError::Decrypt)
        );
    }
}

//! Printable identifiers.
//!
//! User and device ids are the first 20 bytes of the blake3 hash of the
//! ed25519 public key, printed as 32 lowercase base32 characters. An id
//! therefore cannot be claimed without the key, which is what lets the LAN
//! trust a name only as far as the key behind it. Message ids are 128 random
//! bits printed as hex.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Serialize};

/// Number of bytes in a user or device id.
pub const ID_LEN: usize = 20;

/// Why a printed id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdParseError {
    /// The text is not valid base32 (or hex, for message ids).
    #[error("id is not valid {0}")]
    Encoding(&'static str),
    /// The text decodes to the wrong number of bytes.
    #[error("id has {got} bytes, expected {expected}")]
    Length {
        /// Bytes found.
        got: usize,
        /// Bytes required.
        expected: usize,
    },
}

fn id_from_public_key(public_key: &[u8; 32], domain: &str) -> [u8; ID_LEN] {
    let mut hasher = blake3::Hasher::new_derive_key(domain);
    hasher.update(public_key);
    let hash = hasher.finalize();
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&hash.as_bytes()[..ID_LEN]);
    out
}

fn encode_id(bytes: &[u8; ID_LEN]) -> String {
    BASE32_NOPAD.encode(bytes).to_ascii_lowercase()
}

fn decode_id(text: &str) -> Result<[u8; ID_LEN], IdParseError> {
    let bytes = BASE32_NOPAD
        .decode(text.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| IdParseError::Encoding("base32"))?;
    <[u8; ID_LEN]>::try_from(bytes.as_slice()).map_err(|_| IdParseError::Length {
        got: bytes.len(),
        expected: ID_LEN,
    })
}

macro_rules! key_id {
    ($(#[$doc:meta])* $name:ident, $domain:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// The id belonging to an ed25519 public key.
            pub fn from_public_key(public_key: &[u8; 32]) -> Self {
                Self(id_from_public_key(public_key, $domain))
            }

            /// A short form for humans telling two ids apart: `abcd-efgh`.
            pub fn fingerprint(&self) -> String {
                let text = self.to_string();
                format!("{}-{}", &text[..4], &text[4..8])
            }

            /// Whether the printed id starts with `prefix` (case-insensitive).
            pub fn matches_prefix(&self, prefix: &str) -> bool {
                !prefix.is_empty() && self.to_string().starts_with(&prefix.to_ascii_lowercase())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode_id(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.fingerprint())
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                decode_id(s).map(Self)
            }
        }
    };
}

key_id!(
    /// A person: the hash of their user (signing) key. All devices of a user share it.
    UserId,
    "tincan user id v1"
);
key_id!(
    /// One installation of tincan: the hash of its device signing key.
    DeviceId,
    "tincan device id v1"
);

key_id!(
    /// An organisation: the hash of its organisation (signing) key.
    OrgId,
    "tincan org id v1"
);
key_id!(
    /// A relay: the hash of its signing key. Printed in full it is the
    /// fingerprint a user pins in `HOST:PORT#FINGERPRINT`.
    RelayId,
    "tincan relay id v1"
);

/// Defines a 128-bit random id type printed as 32 lowercase hex characters
/// (`random`, `Display`, `Debug`, `FromStr`, serde, ordering).
macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A fresh random id.
            pub fn random(entropy: &mut dyn $crate::Entropy) -> Self {
                let mut bytes = [0u8; 16];
                entropy.fill(&mut bytes);
                Self(bytes)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bytes = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(s.trim().as_bytes())
                    .map_err(|_| $crate::IdParseError::Encoding("hex"))?;
                <[u8; 16]>::try_from(bytes.as_slice())
                    .map(Self)
                    .map_err(|_| $crate::IdParseError::Length {
                        got: bytes.len(),
                        expected: 16,
                    })
            }
        }
    };
}
pub(crate) use random_id;

random_id!(
    /// A 128-bit message id, chosen at random by the sender.
    MessageId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let user = UserId::from_public_key(&[7u8; 32]);
        let text = user.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text, text.to_ascii_lowercase());
        assert_eq!(text.parse::<UserId>(), Ok(user));
        assert_eq!(text.to_ascii_uppercase().parse::<UserId>(), Ok(user));
        let msg = MessageId([0xab; 16]);
        assert_eq!(msg.to_string().parse::<MessageId>(), Ok(msg));
    }

    #[test]
    fn user_and_device_ids_of_one_key_differ() {
        let key = [1u8; 32];
        assert_ne!(
            UserId::from_public_key(&key).0,
            DeviceId::from_public_key(&key).0
        );
    }

    #[test]
    fn bad_text_is_a_clear_error() {
        assert_eq!(
            "!!".parse::<UserId>(),
            Err(IdParseError::Encoding("base32"))
        );
        assert!(matches!(
            "aaaa".parse::<UserId>(),
            Err(IdParseError::Length { .. })
        ));
        assert!(matches!(
            "zz".parse::<MessageId>(),
            Err(IdParseError::Encoding("hex"))
        ));
    }

    #[test]
    fn fingerprint_and_prefix() {
        let user = UserId::from_public_key(&[9u8; 32]);
        let fp = user.fingerprint();
        assert_eq!(fp.len(), 9);
        assert!(user.matches_prefix(&user.to_string()[..6].to_ascii_uppercase()));
        assert!(!user.matches_prefix(""));
    }
}

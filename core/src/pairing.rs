//! Pairing a new device with an existing one of the same user, by a short
//! code the user reads off one screen and types on the other.
//!
//! # Protocol
//! The existing device (the *host*, which holds the user key) shows a
//! [`PairingCode`] and waits; the new device (the *joiner*) dials it over
//! the normal mutually authenticated QUIC/TLS connection, each side
//! presenting its own device key (the joiner's is still certified by a
//! throwaway user key of its own). Then, on one connection:
//!
//! ```text
//! joiner → host   Start     { SPAKE2 message B }
//! host   → joiner Challenge { SPAKE2 message A, confirm_host }
//! joiner → host   Confirm   { confirm_joiner, label }
//! host   → joiner Granted   { DeviceCert, name, membership, relay, roster }
//!                 (or Refused at any step)
//! ```
//!
//! SPAKE2 (Ed25519 group) runs with the code as the password and the two
//! TLS-authenticated device keys as its identities; each side proves it
//! derived the same key with a keyed blake3 MAC over the whole transcript.
//! Why a PAKE rather than a MAC of the code: the code is short (50 bits),
//! and anyone who sees `MAC(code, ..)` could try every code offline; with
//! SPAKE2 an active attacker learns nothing it can test offline and gets
//! exactly one online guess, after which the code is spent. Binding the
//! device keys makes a man in the middle (who must terminate TLS with its
//! own key) derive a different key even if it knew the code.
//!
//! Codes are single use (the first `Start` spends it, right or wrong) and
//! expire ([`PAIRING_TTL_MS`]). Sans-IO: time and randomness come in.

use std::fmt;

use serde::{Deserialize, Serialize};
use spake2::{Ed25519Group, Identity as SpakeIdentity, Password, Spake2};

use crate::device::Roster;
use crate::identity::{DeviceCert, DeviceKey};
use crate::org::Membership;
use crate::Entropy;

/// Characters of a pairing code (50 bits).
pub const CODE_LEN: usize = 10;
/// How long a code stays valid.
pub const PAIRING_TTL_MS: u64 = 5 * 60 * 1000;
/// Longest device label accepted in [`PairMessage::Confirm`], in bytes.
pub const MAX_LABEL_LEN: usize = 64;

/// Crockford base32: no I, L, O or U, so nothing reads as something else.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const HOST_CONFIRM: &str = "tincan pair confirm host v1";
const JOINER_CONFIRM: &str = "tincan pair confirm joiner v1";
const KEY_CONTEXT: &str = "tincan pair key v1";

/// A short, human-friendly, single-use pairing code.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode(String);

impl PairingCode {
    /// A fresh random code.
    pub fn generate(entropy: &mut dyn Entropy) -> Self {
        let mut bytes = [0u8; CODE_LEN];
        entropy.fill(&mut bytes);
        PairingCode(
            bytes
                .iter()
                .map(|b| ALPHABET[usize::from(b & 31)] as char)
                .collect(),
        )
    }

    /// Reads what a user typed: case, spaces and dashes do not matter, and
    /// `I`/`L` read as `1`, `O` as `0` (Crockford's rule).
    pub fn parse(text: &str) -> Result<Self, PairError> {
        let mut code = String::with_capacity(CODE_LEN);
        for c in text.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(PairError::BadCode(format!(
                    "{c:?} is not a pairing code character"
                )));
            }
            code.push(c);
        }
        if code.len() != CODE_LEN {
            return Err(PairError::BadCode(format!(
                "a pairing code has {CODE_LEN} characters, got {}",
                code.len()
            )));
        }
        Ok(PairingCode(code))
    }
}

impl fmt::Display for PairingCode {
    /// `ABCDE-FGHJK`: two groups are easier to read out and type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.0.split_at(CODE_LEN / 2);
        write!(f, "{a}-{b}")
    }
}

impl fmt::Debug for PairingCode {
    /// Never prints the code itself (it is a secret while valid).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingCode(..)")
    }
}

/// Why the host refused (sent to the joiner, shown on both sides).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum PairRefusal {
    /// The code did not match; it is spent, show a new one.
    #[error("wrong pairing code (the code is now spent: run `tincan device pair` again)")]
    WrongCode,
    /// The code expired.
    #[error("the pairing code expired: run `tincan device pair` again")]
    Expired,
    /// No code is being shown on that device.
    #[error("that device is not waiting for a pairing (run `tincan device pair` there)")]
    NotWaiting,
    /// Another device is pairing with this code right now.
    #[error("another device is already pairing with this code")]
    Busy,
    /// Anything else, explained.
    #[error("{0}")]
    Other(String),
}

/// The host's answer to a successful pairing: everything the new device
/// needs to be the same user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairGrant {
    /// The user key's certificate for the joiner's device key.
    pub cert: DeviceCert,
    /// The user's display name.
    pub name: String,
    /// The user's organisation membership, if any (it is per user).
    pub membership: Option<Membership>,
    /// The relay (`HOST:PORT#FINGERPRINT`), if the host has one configured.
    pub relay: Option<String>,
    /// The user's other devices and removed devices.
    pub roster: Roster,
}

/// One pairing message (carried in `Frame::Pair`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PairMessage {
    /// Joiner → host: SPAKE2 message B.
    Start {
        /// The SPAKE2 message.
        spake: Vec<u8>,
    },
    /// Host → joiner: SPAKE2 message A and the host's key confirmation.
    Challenge {
        /// The SPAKE2 message.
        spake: Vec<u8>,
        /// MAC over the transcript with the derived key.
        confirm: [u8; 32],
    },
    /// Joiner → host: the joiner's key confirmation and a label for it.
    Confirm {
        /// MAC over the transcript with the derived key.
        confirm: [u8; 32],
        /// What to call this device in `device list` (e.g. its host name).
        label: String,
    },
    /// Host → joiner: enrolled.
    Granted(Box<PairGrant>),
    /// Host → joiner: refused.
    Refused(PairRefusal),
}

/// Why pairing failed on the joiner's side.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// What was typed is not a pairing code.
    #[error("invalid pairing code: {0}")]
    BadCode(String),
    /// The host's key confirmation did not match: wrong code, or someone
    /// in the middle.
    #[error(
        "wrong pairing code (or the other device is not who it claims to be); nothing was enrolled"
    )]
    WrongCode,
    /// The host refused.
    #[error("the other device refused: {0}")]
    Refused(PairRefusal),
    /// The host said something out of order or malformed.
    #[error("pairing protocol error: {0}")]
    Protocol(String),
    /// The grant does not describe this device or this user consistently.
    #[error("the other device sent an unusable enrolment: {0}")]
    BadGrant(String),
}

/// Adapts [`Entropy`] to the RNG trait SPAKE2 takes.
struct EntropyRng<'a>(&'a mut dyn Entropy);

impl spake2::rand_core::TryRng for EntropyRng<'_> {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.0.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.0.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}

// The caller's entropy is a CSPRNG by contract (see `Entropy`).
impl spake2::rand_core::TryCryptoRng for EntropyRng<'_> {}

/// The two device keys and both SPAKE2 messages, in a fixed order.
struct Transcript<'a> {
    host: &'a [u8; 32],
    joiner: &'a [u8; 32],
    msg_a: &'a [u8],
    msg_b: &'a [u8],
}

impl Transcript<'_> {
    fn mac(&self, key: &[u8; 32], context: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(key);
        hasher.update(context.as_bytes());
        hasher.update(self.host);
        hasher.update(self.joiner);
        for msg in [self.msg_a, self.msg_b] {
            hasher.update(&(msg.len() as u64).to_be_bytes());
            hasher.update(msg);
        }
        *hasher.finalize().as_bytes()
    }
}

fn derive_key(spake_key: &[u8]) -> [u8; 32] {
    blake3::derive_key(KEY_CONTEXT, spake_key)
}

/// Constant-time comparison of two MACs.
fn same_mac(a: &[u8; 32], b: &[u8; 32]) -> bool {
    blake3::Hash::from_bytes(*a) == blake3::Hash::from_bytes(*b)
}

fn spake_identity(key: &[u8; 32]) -> SpakeIdentity {
    SpakeIdentity::new(key)
}

/// Where the host is in one pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostState {
    /// Showing the code.
    Waiting,
    /// Sent the challenge to `joiner`; expects its confirmation.
    Challenged {
        joiner: [u8; 32],
        expected: [u8; 32],
    },
    /// The joiner proved the code; the driver sends the grant.
    Paired { joiner: [u8; 32] },
    /// Ended without pairing.
    Failed(PairRefusal),
}

/// The host's side of one pairing (one code).
#[derive(Debug, Clone)]
pub struct PairHost {
    code: PairingCode,
    host_key: [u8; 32],
    expires_at_ms: u64,
    state: HostState,
}

impl PairHost {
    /// Starts showing a fresh code; `host_key` is this device's ed25519
    /// public key (the one its TLS certificate carries).
    pub fn new(host_key: [u8; 32], now_ms: u64, entropy: &mut dyn Entropy) -> Self {
        PairHost {
            code: PairingCode::generate(entropy),
            host_key,
            expires_at_ms: now_ms.saturating_add(PAIRING_TTL_MS),
            state: HostState::Waiting,
        }
    }

    /// The code to show.
    pub fn code(&self) -> &PairingCode {
        &self.code
    }

    /// When the code stops working (ms since the Unix epoch).
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }

    /// `Some(Ok(joiner key))` once paired, `Some(Err(..))` once failed.
    #[must_use]
    pub fn outcome(&self) -> Option<Result<[u8; 32], PairRefusal>> {
        match &self.state {
            HostState::Paired { joiner } => Some(Ok(*joiner)),
            HostState::Failed(refusal) => Some(Err(refusal.clone())),
            _ => None,
        }
    }

    /// When [`PairHost::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        matches!(
            self.state,
            HostState::Waiting | HostState::Challenged { .. }
        )
        .then_some(self.expires_at_ms)
    }

    /// Expires the code once its time is up.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if now_ms >= self.expires_at_ms && self.poll_timeout().is_some() {
            self.state = HostState::Failed(PairRefusal::Expired);
        }
    }

    fn check_time(&mut self, now_ms: u64) -> Result<(), PairRefusal> {
        self.handle_timeout(now_ms);
        match &self.state {
            HostState::Failed(refusal) => Err(refusal.clone()),
            HostState::Paired { .. } => Err(PairRefusal::NotWaiting),
            _ => Ok(()),
        }
    }

    /// A joiner (TLS-authenticated as `joiner_key`) sent `Start`. Answers
    /// the challenge, or a refusal. The first start spends the code.
    pub fn handle_start(
        &mut self,
        now_ms: u64,
        joiner_key: [u8; 32],
        spake_b: &[u8],
        entropy: &mut dyn Entropy,
    ) -> PairMessage {
        if let Err(refusal) = self.check_time(now_ms) {
            return PairMessage::Refused(refusal);
        }
        if self.state != HostState::Waiting {
            return PairMessage::Refused(PairRefusal::Busy);
        }
        let (spake, msg_a) = Spake2::<Ed25519Group>::start_a_with_rng(
            &Password::new(self.code.0.as_bytes()),
            &spake_identity(&self.host_key),
            &spake_identity(&joiner_key),
            EntropyRng(entropy),
        );
        let key = match spake.finish(spake_b) {
            Ok(key) => derive_key(&key),
            Err(e) => {
                // Garbage spends the code too: no free retries.
                self.state =
                    HostState::Failed(PairRefusal::Other(format!("malformed pairing start: {e}")));
                return PairMessage::Refused(PairRefusal::Other("malformed pairing start".into()));
            }
        };
        let transcript = Transcript {
            host: &self.host_key,
            joiner: &joiner_key,
            msg_a: &msg_a,
            msg_b: spake_b,
        };
        self.state = HostState::Challenged {
            joiner: joiner_key,
            expected: transcript.mac(&key, JOINER_CONFIRM),
        };
        PairMessage::Challenge {
            confirm: transcript.mac(&key, HOST_CONFIRM),
            spake: msg_a,
        }
    }

    /// The joiner's confirmation. `Ok(())`: the joiner knows the code; the
    /// driver now certifies `joiner_key` and sends [`PairMessage::Granted`].
    /// Any error ends this pairing (the code is spent).
    pub fn handle_confirm(
        &mut self,
        now_ms: u64,
        joiner_key: [u8; 32],
        confirm: &[u8; 32],
    ) -> Result<(), PairRefusal> {
        self.check_time(now_ms)?;
        let HostState::Challenged { joiner, expected } = &self.state else {
            return Err(PairRefusal::NotWaiting);
        };
        if *joiner != joiner_key {
            // Another connection than the one that started: not ours.
            return Err(PairRefusal::Busy);
        }
        if !same_mac(expected, confirm) {
            self.state = HostState::Failed(PairRefusal::WrongCode);
            return Err(PairRefusal::WrongCode);
        }
        self.state = HostState::Paired { joiner: joiner_key };
        Ok(())
    }

    /// Ends the pairing early (the user gave up, or the joiner vanished).
    pub fn cancel(&mut self, why: PairRefusal) {
        if self.outcome().is_none() {
            self.state = HostState::Failed(why);
        }
    }
}

/// The joiner's side of one pairing.
pub struct PairJoin {
    spake: Option<Spake2<Ed25519Group>>,
    my_key: [u8; 32],
    my_agreement_key: [u8; 32],
    host_key: [u8; 32],
    msg_b: Vec<u8>,
    key: Option<[u8; 32]>,
}

impl fmt::Debug for PairJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairJoin")
            .field("confirmed", &self.key.is_some())
            .finish()
    }
}

impl PairJoin {
    /// Starts pairing `me` with the host whose TLS-authenticated device
    /// key is `host_key`; returns the state and the `Start` to send.
    pub fn start(
        code: &PairingCode,
        me: &DeviceKey,
        host_key: [u8; 32],
        entropy: &mut dyn Entropy,
    ) -> (Self, PairMessage) {
        let my_key = me.public_key();
        let (spake, msg_b) = Spake2::<Ed25519Group>::start_b_with_rng(
            &Password::new(code.0.as_bytes()),
            &spake_identity(&host_key),
            &spake_identity(&my_key),
            EntropyRng(entropy),
        );
        let join = PairJoin {
            spake: Some(spake),
            my_key,
            my_agreement_key: me.agreement_public_key(),
            host_key,
            msg_b: msg_b.clone(),
            key: None,
        };
        (join, PairMessage::Start { spake: msg_b })
    }

    /// The host's answer to `Start`: checks its key confirmation and
    /// returns the `Confirm` to send.
    pub fn handle_challenge(
        &mut self,
        answer: PairMessage,
        label: &str,
    ) -> Result<PairMessage, PairError> {
        let (msg_a, confirm) = match answer {
            PairMessage::Challenge { spake, confirm } => (spake, confirm),
            PairMessage::Refused(refusal) => return Err(PairError::Refused(refusal)),
            _ => return Err(PairError::Protocol("expected a challenge".into())),
        };
        let spake = self
            .spake
            .take()
            .ok_or_else(|| PairError::Protocol("challenge twice".into()))?;
        let key = derive_key(
            &spake
                .finish(&msg_a)
                .map_err(|e| PairError::Protocol(format!("bad challenge: {e}")))?,
        );
        let transcript = Transcript {
            host: &self.host_key,
            joiner: &self.my_key,
            msg_a: &msg_a,
            msg_b: &self.msg_b,
        };
        if !same_mac(&transcript.mac(&key, HOST_CONFIRM), &confirm) {
            return Err(PairError::WrongCode);
        }
        self.key = Some(key);
        let mut label = label.trim().to_string();
        while label.len() > MAX_LABEL_LEN {
            label.pop();
        }
        Ok(PairMessage::Confirm {
            confirm: transcript.mac(&key, JOINER_CONFIRM),
            label,
        })
    }

    /// The host's answer to `Confirm`: the enrolment, checked to describe
    /// exactly this device's keys and one user throughout.
    pub fn handle_grant(&mut self, answer: PairMessage) -> Result<PairGrant, PairError> {
        if self.key.is_none() {
            return Err(PairError::Protocol("grant before challenge".into()));
        }
        let grant = match answer {
            PairMessage::Granted(grant) => *grant,
            PairMessage::Refused(refusal) => return Err(PairError::Refused(refusal)),
            _ => return Err(PairError::Protocol("expected a grant".into())),
        };
        let bad = |why: &str| Err(PairError::BadGrant(why.to_string()));
        if grant.cert.verify().is_err() {
            return bad("the device certificate is invalid");
        }
        if grant.cert.device_key != self.my_key || grant.cert.agreement_key != self.my_agreement_key
        {
            return bad("the certificate is for another device");
        }
        let user = grant.cert.user_id();
        if grant
            .roster
            .certs
            .iter()
            .any(|c| c.user_id() != user || c.verify().is_err())
            || grant
                .roster
                .revocations
                .iter()
                .any(|r| r.user_id() != user || r.verify().is_err())
        {
            return bad("the device list mixes users or is badly signed");
        }
        if !grant
            .roster
            .certs
            .iter()
            .any(|c| c.device_key == self.host_key)
        {
            return bad("the device list does not include the device paired with");
        }
        if grant.membership.as_ref().is_some_and(|m| m.user != user) {
            return bad("the membership is for another user");
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests;

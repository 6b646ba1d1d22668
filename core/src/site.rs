//! Sites and the vocabulary of the gateway election.
//!
//! A *site* is one LAN broadcast domain of one organisation, named by a
//! random [`SiteId`] that its first gateway mints (an IP prefix would not do:
//! two offices may both use 192.168.1.0/24). When two ids meet on one LAN
//! they merge by a fixed rule: the lower id wins, which every node can apply
//! on its own and reach the same answer.
//!
//! Candidates for gateway are compared by [`Rank`], a total order in which
//! *better is greater*: configured [`GatewayPreference`] first, then a coarse
//! uptime bucket (coarse so a restart or a minute of difference does not
//! reorder the LAN), then the device id (lower wins) as a deterministic tie
//! break. A node whose preference is [`GatewayPreference::Never`] has no rank
//! at all, so it cannot win by accident.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DeviceId, Entropy, IdParseError};

/// Number of bytes in a [`SiteId`].
pub const SITE_ID_LEN: usize = 16;

/// Highest value of [`Rank::uptime_bucket_of`]: beyond about 34 hours of
/// uptime every node counts as equally stable.
pub const MAX_UPTIME_BUCKET: u32 = 12;

/// The name of one site: 128 random bits, printed as 32 lowercase hex chars.
///
/// `Ord` is the merge rule: when two ids are heard on one LAN, the lower one
/// wins.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SiteId(pub [u8; SITE_ID_LEN]);

impl SiteId {
    /// A fresh random id (minted by the first gateway of a LAN).
    pub fn random(entropy: &mut dyn Entropy) -> Self {
        let mut bytes = [0u8; SITE_ID_LEN];
        entropy.fill(&mut bytes);
        Self(bytes)
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex chars tell the sites of one organisation apart in logs.
        write!(f, "SiteId({})", &self.to_string()[..8])
    }
}

impl FromStr for SiteId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.trim().as_bytes())
            .map_err(|_| IdParseError::Encoding("hex"))?;
        <[u8; SITE_ID_LEN]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| IdParseError::Length {
                got: bytes.len(),
                expected: SITE_ID_LEN,
            })
    }
}

/// Whether this node may serve as its site's gateway, as configured.
///
/// Ordered `Never < Auto < Prefer`; only `Auto` and `Prefer` are eligible.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum GatewayPreference {
    /// Never act as gateway (a laptop on battery, a kiosk).
    Never,
    /// Eligible; ranked after nodes that prefer the role.
    #[default]
    Auto,
    /// Eligible and ranked first (a desktop that is always on).
    Prefer,
}

impl GatewayPreference {
    /// The configuration spelling: `never`, `auto` or `prefer`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Auto => "auto",
            Self::Prefer => "prefer",
        }
    }
}

impl fmt::Display for GatewayPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gateway preference that is not `never`, `auto` or `prefer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown gateway preference {0:?} (expected never, auto or prefer)")]
pub struct PreferenceParseError(pub String);

impl FromStr for GatewayPreference {
    type Err = PreferenceParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "never" => Ok(Self::Never),
            "auto" => Ok(Self::Auto),
            "prefer" => Ok(Self::Prefer),
            _ => Err(PreferenceParseError(s.to_owned())),
        }
    }
}

/// How good a gateway candidate is; *greater is better*.
///
/// Compared by preference, then uptime bucket, then device id with the
/// *lower* id ranking higher. Every field is known to every peer (it travels
/// in beacons), so all nodes of a LAN order the candidates the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rank {
    /// The configured preference (never `Never`: such a node has no rank).
    pub preference: GatewayPreference,
    /// [`Rank::uptime_bucket_of`] the node's uptime.
    pub uptime_bucket: u32,
    /// The candidate.
    pub device: DeviceId,
}

impl Rank {
    /// The rank of an eligible node, or `None` when `preference` is `Never`.
    pub fn new(preference: GatewayPreference, uptime_ms: u64, device: DeviceId) -> Option<Self> {
        (preference != GatewayPreference::Never).then(|| Self {
            preference,
            uptime_bucket: Self::uptime_bucket_of(uptime_ms),
            device,
        })
    }

    /// A coarse, logarithmic uptime class: 0 below one minute, then
    /// `1 + floor(log2(minutes))`, capped at [`MAX_UPTIME_BUCKET`].
    ///
    /// Logarithmic so that a node up for days outranks one that just
    /// restarted, while two long-running nodes do not swap places every few
    /// minutes.
    pub fn uptime_bucket_of(uptime_ms: u64) -> u32 {
        let minutes = uptime_ms / 60_000;
        (u64::BITS - minutes.leading_zeros()).min(MAX_UPTIME_BUCKET)
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        self.preference
            .cmp(&other.preference)
            .then(self.uptime_bucket.cmp(&other.uptime_bucket))
            // Reversed: the lower device id is the better candidate.
            .then(other.device.cmp(&self.device))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What part a node plays for its site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// No relay is configured: LAN only.
    Standalone,
    /// Talks to the relay directly: alone on its LAN, between gateways, or
    /// claiming the lease and not yet granted.
    Roaming,
    /// Reaches the relay through its site's gateway.
    Member,
    /// Holds its site's lease and bridges the LAN to the relay.
    Gateway,
}

impl Role {
    /// The lowercase name shown to users and in the control API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Standalone => "standalone",
            Self::Roaming => "roaming",
            Self::Member => "member",
            Self::Gateway => "gateway",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gateway and the lease epoch under which it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GatewayRef {
    /// The gateway device.
    pub device: DeviceId,
    /// The epoch of its lease at the relay.
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    fn device(n: u8) -> DeviceId {
        DeviceId([n; 20])
    }

    #[test]
    fn site_id_round_trips_and_orders() {
        let mut entropy = SeededEntropy::new(1);
        let a = SiteId::random(&mut entropy);
        let b = SiteId::random(&mut entropy);
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text, text.to_ascii_lowercase());
        assert_eq!(text.parse::<SiteId>(), Ok(a));
        assert_eq!(text.to_ascii_uppercase().parse::<SiteId>(), Ok(a));
        assert_eq!(format!("{a:?}"), format!("SiteId({})", &text[..8]));
        assert!(SiteId([0; 16]) < SiteId([1; 16]));
        assert_eq!("zz".parse::<SiteId>(), Err(IdParseError::Encoding("hex")));
        assert!(matches!(
            "abcd".parse::<SiteId>(),
            Err(IdParseError::Length { got: 2, .. })
        ));
    }

    #[test]
    fn preference_text_and_order() {
        for p in [
            GatewayPreference::Never,
            GatewayPreference::Auto,
            GatewayPreference::Prefer,
        ] {
            assert_eq!(p.to_string().parse::<GatewayPreference>(), Ok(p));
        }
        assert_eq!(" Prefer ".parse(), Ok(GatewayPreference::Prefer));
        assert!("always".parse::<GatewayPreference>().is_err());
        assert!(GatewayPreference::Prefer > GatewayPreference::Auto);
        assert_eq!(GatewayPreference::default(), GatewayPreference::Auto);
    }

    #[test]
    fn uptime_buckets_are_logarithmic_and_capped() {
        assert_eq!(Rank::uptime_bucket_of(0), 0);
        assert_eq!(Rank::uptime_bucket_of(59_999), 0);
        assert_eq!(Rank::uptime_bucket_of(60_000), 1);
        assert_eq!(Rank::uptime_bucket_of(3 * 60_000), 2);
        assert_eq!(Rank::uptime_bucket_of(4 * 60_000), 3);
        assert_eq!(Rank::uptime_bucket_of(u64::MAX), MAX_UPTIME_BUCKET);
    }

    #[test]
    fn rank_orders_preference_then_uptime_then_lower_device() {
        let hour = 3_600_000;
        let rank = |p, up, d| Rank::new(p, up, device(d)).expect("eligible");
        assert!(Rank::new(GatewayPreference::Never, hour, device(1)).is_none());
        // Preference beats uptime.
        assert!(
            rank(GatewayPreference::Prefer, 0, 9) > rank(GatewayPreference::Auto, 100 * hour, 1)
        );
        // Uptime beats device id.
        assert!(rank(GatewayPreference::Auto, hour, 9) > rank(GatewayPreference::Auto, 0, 1));
        // Same bucket: the lower device id wins.
        assert!(
            rank(GatewayPreference::Auto, hour, 1) > rank(GatewayPreference::Auto, hour + 1, 2)
        );
    }

    #[test]
    fn role_names() {
        let names: Vec<_> = [Role::Standalone, Role::Roaming, Role::Member, Role::Gateway]
            .iter()
            .map(Role::as_str)
            .collect();
        assert_eq!(names, ["standalone", "roaming", "member", "gateway"]);
    }
}

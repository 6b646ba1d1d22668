//! Where a transfer is, as users see it: the states a file transfer
//! passes through, with their names. A protocol fact (the daemon, the
//! desktop app and scripts agree on it), so it lives in core; the store
//! writes the same names into its rows, but the JSON contract is this type,
//! not the SQLite schema.

use std::fmt;
use std::str::FromStr;

/// Where a transfer is, as users see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferState {
    /// Offered, waiting for the recipient's answer.
    Offered,
    /// Accepted; the first bytes have not moved yet.
    Accepted,
    /// Bytes are moving.
    Transferring,
    /// Interrupted (the other side is offline); resumes by itself.
    Paused,
    /// Complete and verified.
    Done,
    /// Given up; see `error`.
    Failed,
    /// The recipient declined.
    Rejected,
    /// One side cancelled.
    Cancelled,
}

impl TransferState {
    /// Every state, in the order a transfer passes through them.
    pub const ALL: [TransferState; 8] = [
        TransferState::Offered,
        TransferState::Accepted,
        TransferState::Transferring,
        TransferState::Paused,
        TransferState::Done,
        TransferState::Failed,
        TransferState::Rejected,
        TransferState::Cancelled,
    ];

    /// The lowercase name (database and JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Offered => "offered",
            TransferState::Accepted => "accepted",
            TransferState::Transferring => "transferring",
            TransferState::Paused => "paused",
            TransferState::Done => "done",
            TransferState::Failed => "failed",
            TransferState::Rejected => "rejected",
            TransferState::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransferState::Done
                | TransferState::Failed
                | TransferState::Rejected
                | TransferState::Cancelled
        )
    }
}

impl fmt::Display for TransferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransferState {
    type Err = ParseTransferStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "offered" => TransferState::Offered,
            "accepted" => TransferState::Accepted,
            "transferring" => TransferState::Transferring,
            "paused" => TransferState::Paused,
            "done" => TransferState::Done,
            "failed" => TransferState::Failed,
            "rejected" => TransferState::Rejected,
            "cancelled" => TransferState::Cancelled,
            other => return Err(ParseTransferStateError(other.to_owned())),
        })
    }
}

/// A transfer state name that is none of [`TransferState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transfer state {0:?}")]
pub struct ParseTransferStateError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_errors() {
        for state in TransferState::ALL {
            assert_eq!(state.as_str().parse::<TransferState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(
            "lost".parse::<TransferState>(),
            Err(ParseTransferStateError("lost".into()))
        );
        let finals: Vec<_> = TransferState::ALL.iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals.len(), 4);
    }
}

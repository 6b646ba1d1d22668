//! Contacts: who a user keeps in their list, and the request handshake that
//! puts someone there.
//!
//! Members of one's organisation are contacts without asking (their
//! membership, checked on every connection, is the introduction). Anyone
//! else is asked first: `add` sends a [`ContactNote::Request`], the other
//! side accepts or rejects. Two users who ask each other at once both end up
//! [`ContactState::Accepted`]. A rejection is final until the rejecting side
//! adds the other itself, so a rejected requester cannot keep asking.
//!
//! [`ContactState::on_local`] and [`ContactState::on_remote`] are the whole
//! handshake; the node stores the state and sends the note they return.

use serde::{Deserialize, Serialize};

/// Longest display name or request message in a contact note, in bytes.
pub const MAX_CONTACT_TEXT: usize = 256;

/// What one user tells another about their contact relationship (sealed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactNote {
    /// "Please add me": the requester's name and an optional message.
    Request {
        /// How the requester calls themselves.
        name: String,
        /// A short message ("we met at the fair").
        message: String,
    },
    /// The request was accepted.
    Accept,
    /// The request was rejected.
    Reject,
}

/// Where a contact relationship stands, seen from this user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContactState {
    /// We asked; no answer yet.
    Requested,
    /// They asked; we have not answered.
    Incoming,
    /// Both agreed (or we accepted).
    Accepted,
    /// They rejected our request.
    Rejected,
    /// We rejected their request (their later requests are ignored).
    Declined,
}

/// What the user does with a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactAction {
    /// Add (ask them, or accept a pending request of theirs).
    Add,
    /// Accept their pending request.
    Accept,
    /// Reject their pending request.
    Reject,
}

/// Why a local action is not possible in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContactError {
    /// Accept or reject without a pending request from them.
    #[error("there is no pending contact request from this user")]
    NoRequest,
    /// A name or message over [`MAX_CONTACT_TEXT`] bytes.
    #[error("contact text of {0} bytes exceeds {MAX_CONTACT_TEXT} bytes")]
    TooLong(usize),
}

/// The outcome of a step: the new state, and what to tell the other side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactStep {
    /// The state after the step (`None`: no relationship).
    pub state: Option<ContactState>,
    /// The note to send, if any.
    pub send: Option<ContactNote>,
}

impl ContactNote {
    /// Checks the text limits of a note (receivers refuse longer ones).
    pub fn validate(&self) -> Result<(), ContactError> {
        if let ContactNote::Request { name, message } = self {
            for text in [name, message] {
                if text.len() > MAX_CONTACT_TEXT {
                    return Err(ContactError::TooLong(text.len()));
                }
            }
        }
        Ok(())
    }
}

impl ContactState {
    /// A local action, from state `current` (`None`: not in the list).
    /// `request` is the note an [`ContactAction::Add`] sends when it has to
    /// ask.
    pub fn on_local(
        current: Option<ContactState>,
        action: ContactAction,
        request: ContactNote,
    ) -> Result<ContactStep, ContactError> {
        use ContactState::*;
        request.validate()?;
        let step = |state, send| ContactStep {
            state: Some(state),
            send,
        };
        Ok(match (current, action) {
            // Adding someone who asked us is accepting them.
            (Some(Incoming), ContactAction::Add | ContactAction::Accept) => {
                step(Accepted, Some(ContactNote::Accept))
            }
            (Some(Incoming), ContactAction::Reject) => step(Declined, Some(ContactNote::Reject)),
            (Some(Accepted), ContactAction::Add) => step(Accepted, None),
            // Asking again (after their rejection, or our own decline, or
            // a lost request) sends a fresh request.
            (None | Some(Requested | Rejected | Declined), ContactAction::Add) => {
                step(Requested, Some(request))
            }
            (_, ContactAction::Accept | ContactAction::Reject) => {
                return Err(ContactError::NoRequest)
            }
        })
    }

    /// A note from the other user, in state `current`. Returns `None` when
    /// the note changes nothing (a stale or ignored note).
    pub fn on_remote(current: Option<ContactState>, note: &ContactNote) -> Option<ContactStep> {
        use ContactState::*;
        let step = |state, send| {
            Some(ContactStep {
                state: Some(state),
                send,
            })
        };
        match (current, note) {
            (None | Some(Rejected), ContactNote::Request { .. }) => step(Incoming, None),
            // Both asked: that is agreement; tell them so.
            (Some(Requested), ContactNote::Request { .. }) => {
                step(Accepted, Some(ContactNote::Accept))
            }
            // They lost our accept or re-added us: confirm again.
            (Some(Accepted), ContactNote::Request { .. }) => {
                step(Accepted, Some(ContactNote::Accept))
            }
            (Some(Requested), ContactNote::Accept) => step(Accepted, None),
            (Some(Requested), ContactNote::Reject) => step(Rejected, None),
            // Declined stays declined; everything else is stale.
            _ => None,
        }
    }

    /// The name used in JSON and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactState::Requested => "requested",
            ContactState::Incoming => "incoming",
            ContactState::Accepted => "accepted",
            ContactState::Rejected => "rejected",
            ContactState::Declined => "declined",
        }
    }
}

impl std::str::FromStr for ContactState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "requested" => ContactState::Requested,
            "incoming" => ContactState::Incoming,
            "accepted" => ContactState::Accepted,
            "rejected" => ContactState::Rejected,
            "declined" => ContactState::Declined,
            other => return Err(format!("unknown contact state {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ContactState::*;
    use super::*;

    fn request() -> ContactNote {
        ContactNote::Request {
            name: "Ann".into(),
            message: "hi".into(),
        }
    }

    /// Runs the handshake between two users, `a` acting first.
    fn exchange(a: &mut Option<ContactState>, b: &mut Option<ContactState>, note: ContactNote) {
        let mut in_flight = vec![(true, note)];
        while let Some((to_b, note)) = in_flight.pop() {
            let target = if to_b { &mut *b } else { &mut *a };
            if let Some(step) = ContactState::on_remote(*target, &note) {
                *target = step.state;
                if let Some(reply) = step.send {
                    in_flight.push((!to_b, reply));
                }
            }
        }
    }

    #[test]
    fn request_then_accept() {
        let (mut a, mut b) = (None, None);
        let step = ContactState::on_local(a, ContactAction::Add, request()).unwrap();
        a = step.state;
        exchange(&mut a, &mut b, step.send.unwrap());
        assert_eq!((a, b), (Some(Requested), Some(Incoming)));
        let step = ContactState::on_local(b, ContactAction::Accept, request()).unwrap();
        b = step.state;
        exchange(&mut b, &mut a, step.send.unwrap());
        assert_eq!((a, b), (Some(Accepted), Some(Accepted)));
    }

    #[test]
    fn rejected_requester_cannot_keep_asking() {
        let (mut a, mut b) = (Some(Requested), Some(Incoming));
        let step = ContactState::on_local(b, ContactAction::Reject, request()).unwrap();
        b = step.state;
        exchange(&mut b, &mut a, step.send.unwrap());
        assert_eq!((a, b), (Some(Rejected), Some(Declined)));
        let step = ContactState::on_local(a, ContactAction::Add, request()).unwrap();
        a = step.state;
        exchange(&mut a, &mut b, step.send.unwrap());
        assert_eq!(
            b,
            Some(Declined),
            "a declined user's new request is ignored"
        );
        // The decliner can still change their mind.
        let step = ContactState::on_local(b, ContactAction::Add, request()).unwrap();
        b = step.state;
        exchange(&mut b, &mut a, step.send.unwrap());
        assert_eq!((a, b), (Some(Accepted), Some(Accepted)));
    }

    #[test]
    fn crossing_requests_agree() {
        let (mut a, mut b) = (Some(Requested), Some(Requested));
        exchange(&mut a, &mut b, request());
        assert_eq!((a, b), (Some(Accepted), Some(Accepted)));
    }

    #[test]
    fn accept_without_request_is_an_error() {
        assert_eq!(
            ContactState::on_local(None, ContactAction::Accept, request()),
            Err(ContactError::NoRequest)
        );
        let long = ContactNote::Request {
            name: "x".repeat(MAX_CONTACT_TEXT + 1),
            message: String::new(),
        };
        assert!(ContactState::on_local(None, ContactAction::Add, long).is_err());
    }
}

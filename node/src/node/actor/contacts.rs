//! The contact list in the actor: organisation members listed without
//! asking, requests to and from everyone else (`tincan_core::contact`),
//! groups and names of the user's choosing.
//!
//! A request, accept or reject is sealed control content in the durable
//! outbox, so it survives restarts and reaches an offline user later. A
//! request from a blocked user is refused like any of their messages.

use tincan_core::contact::{ContactAction, ContactNote, ContactState, MAX_CONTACT_TEXT};
use tincan_core::{Content, DeviceCert, MessageId, Opened, UserId};

use super::inbound::Rejection;
use super::Actor;
use crate::event::{ContactView, NodeEvent};
use crate::keystore::OsEntropy;
use crate::node::NodeError;
use crate::store::ContactRecord;

/// `state` of an organisation member without a handshake of their own.
const ORG_STATE: &str = "org";

impl Actor {
    /// Whether `user` proved membership of this node's organisation (on
    /// the LAN, or through the relay's directory).
    pub(super) fn is_org_member(&self, user: &UserId) -> bool {
        self.membership.is_some()
            && self.book.devices_of(user).any(|d| {
                self.org_peers.contains_key(&d.device) || self.remote.contains_key(&d.device)
            })
    }

    /// The users in contact group `group` (case-insensitive).
    pub(super) fn group_members(&self, group: &str) -> Result<Vec<UserId>, NodeError> {
        let members: Vec<UserId> = self
            .store
            .contacts()?
            .into_iter()
            .filter(|c| c.group.eq_ignore_ascii_case(group.trim()))
            .filter(|c| c.state.is_none_or(|s| s == ContactState::Accepted))
            .map(|c| c.user)
            .collect();
        if members.is_empty() {
            return Err(NodeError::NoSuchGroup(group.to_string()));
        }
        Ok(members)
    }

    pub(super) fn contact_views(&self) -> Result<Vec<ContactView>, NodeError> {
        let rows = self.store.contacts()?;
        let me = self.identity.user_id();
        let mut users: Vec<UserId> = self.book.devices().map(|d| d.user).collect();
        users.sort();
        users.dedup();
        let mut views: Vec<ContactView> = rows
            .iter()
            .filter(|c| c.state.is_some() || self.is_org_member(&c.user))
            .map(|c| self.contact_view(&c.user, Some(c)))
            .collect();
        for user in users {
            if user != me && self.is_org_member(&user) && !rows.iter().any(|c| c.user == user) {
                views.push(self.contact_view(&user, None));
            }
        }
        views.sort_by(|a, b| {
            (a.group.to_lowercase(), a.name.to_lowercase())
                .cmp(&(b.group.to_lowercase(), b.name.to_lowercase()))
        });
        Ok(views)
    }

    fn contact_view(&self, user: &UserId, row: Option<&ContactRecord>) -> ContactView {
        let device = self
            .book
            .devices_of(user)
            .find(|d| {
                self.presence_of(&d.device, self.reachable(&d.device))
                    .online
            })
            .or_else(|| self.book.devices_of(user).next());
        let (online, presence) = match device {
            Some(d) => {
                let shown = self.presence_of(&d.device, self.reachable(&d.device));
                (shown.online, shown.presence.to_string())
            }
            None => (false, "offline".to_string()),
        };
        let state = match row.and_then(|r| r.state) {
            Some(state) => state.as_str().to_string(),
            None => ORG_STATE.to_string(),
        };
        ContactView {
            user_id: user.to_string(),
            name: row
                .map(|r| r.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| self.book.display_name(user)),
            group: row.map(|r| r.group.clone()).unwrap_or_default(),
            state,
            message: row.map(|r| r.message.clone()).unwrap_or_default(),
            online,
            presence,
        }
    }

    pub(super) fn contact_add(
        &mut self,
        text: &str,
        group: Option<String>,
        name: Option<String>,
        message: String,
    ) -> Result<ContactView, NodeError> {
        let me = self.identity.user_id();
        let is_me = text.trim().eq_ignore_ascii_case(self.identity.name.trim())
            || text.trim().parse::<UserId>().is_ok_and(|u| u == me);
        if is_me {
            return Err(NodeError::ContactSelf);
        }
        let user = self.book.resolve(text)?;
        if user == me {
            return Err(NodeError::ContactSelf);
        }
        if self.is_blocked(&user) {
            return Err(NodeError::Blocked(self.book.display_name(&user)));
        }
        for text in [
            &message,
            name.as_ref().unwrap_or(&String::new()),
            group.as_ref().unwrap_or(&String::new()),
        ] {
            if text.len() > MAX_CONTACT_TEXT {
                return Err(NodeError::Contact(tincan_core::ContactError::TooLong(
                    text.len(),
                )));
            }
        }
        let row = self.store.contact(&user)?;
        let mut record = row.clone().unwrap_or_else(|| ContactRecord {
            user,
            name: String::new(),
            group: String::new(),
            state: None,
            message: String::new(),
            updated_at_ms: 0,
        });
        if let Some(group) = group {
            record.group = group.trim().to_string();
        }
        if let Some(name) = name {
            record.name = name.trim().to_string();
        }
        record.updated_at_ms = self.now;
        // Organisation members are contacts already: only the name and
        // group are the user's to set.
        if !self.is_org_member(&user) || record.state.is_some() {
            let request = ContactNote::Request {
                name: self.identity.name.clone(),
                message,
            };
            let step = ContactState::on_local(record.state, ContactAction::Add, request)?;
            record.state = step.state;
            if let Some(note) = step.send {
                self.send_contact_note(&user, note)?;
            }
        }
        self.store.put_contact(&record)?;
        tracing::info!(%user, state = ?record.state, "contact added");
        let view = self.contact_view(&user, Some(&record));
        self.emit(NodeEvent::Contact {
            contact: view.clone(),
        });
        Ok(view)
    }

    pub(super) fn contact_answer(
        &mut self,
        text: &str,
        action: ContactAction,
    ) -> Result<ContactView, NodeError> {
        let user = self.resolve_contact(text)?;
        let Some(mut record) = self.store.contact(&user)? else {
            return Err(tincan_core::ContactError::NoRequest.into());
        };
        let unused = ContactNote::Accept;
        let step = ContactState::on_local(record.state, action, unused)?;
        if let Some(note) = step.send {
            self.send_contact_note(&user, note)?;
        }
        record.state = step.state;
        record.updated_at_ms = self.now;
        self.store.put_contact(&record)?;
        tracing::info!(%user, state = ?record.state, "contact request answered");
        let view = self.contact_view(&user, Some(&record));
        self.emit(NodeEvent::Contact {
            contact: view.clone(),
        });
        Ok(view)
    }

    pub(super) fn contact_remove(&mut self, text: &str) -> Result<ContactView, NodeError> {
        let user = self.resolve_contact(text)?;
        let row = self.store.contact(&user)?;
        if row.is_none() && !self.is_org_member(&user) {
            return Err(NodeError::NotAContact(text.to_string()));
        }
        self.store.remove_contact(&user)?;
        tracing::info!(%user, "contact removed");
        Ok(self.contact_view(&user, row.as_ref()))
    }

    /// A user by contact name, peer name or id.
    fn resolve_contact(&self, text: &str) -> Result<UserId, NodeError> {
        if let Ok(rows) = self.store.contacts() {
            if let Some(row) = rows
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(text.trim()))
            {
                return Ok(row.user);
            }
        }
        match self.book.resolve(text) {
            Ok(user) => Ok(user),
            Err(e) => text.trim().parse::<UserId>().map_err(|_| e.into()),
        }
    }

    fn send_contact_note(&mut self, user: &UserId, note: ContactNote) -> Result<(), NodeError> {
        let certs: Vec<DeviceCert> = self.device_certs_of(user);
        if certs.is_empty() {
            return Err(NodeError::NoDevices(self.book.display_name(user)));
        }
        let id = MessageId::random(&mut OsEntropy);
        self.queue_envelope(id, self.now, &Content::Contact(note), *user, &certs, &[])
    }

    /// A contact note from another user.
    pub(super) fn on_contact_note(
        &mut self,
        opened: &Opened,
        note: ContactNote,
    ) -> Result<(), Rejection> {
        if let Err(e) = note.validate() {
            return Err(Rejection::Refuse(tincan_core::wire::RefuseReason::Other(
                e.to_string(),
            )));
        }
        let user = opened.sender.user_id();
        let row = match self.store.contact(&user) {
            Ok(row) => row,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the contact list; not acknowledged");
                return Err(Rejection::Retry);
            }
        };
        let Some(step) = ContactState::on_remote(row.as_ref().and_then(|r| r.state), &note) else {
            tracing::debug!(%user, "contact note changes nothing");
            return Ok(());
        };
        let mut record = row.unwrap_or_else(|| ContactRecord {
            user,
            name: String::new(),
            group: String::new(),
            state: None,
            message: String::new(),
            updated_at_ms: 0,
        });
        if let ContactNote::Request { name, message } = &note {
            if record.name.is_empty() {
                record.name = name.clone();
            }
            record.message = message.clone();
        }
        record.state = step.state;
        record.updated_at_ms = self.now;
        if let Err(e) = self.store.put_contact(&record) {
            tracing::error!(error = %e, "cannot store a contact note; not acknowledged");
            return Err(Rejection::Retry);
        }
        if let Some(reply) = step.send {
            if let Err(e) = self.send_contact_note(&user, reply) {
                tracing::warn!(%user, error = %e, "cannot answer a contact note");
            }
        }
        tracing::info!(%user, state = ?record.state, "contact note received");
        self.emit(NodeEvent::Contact {
            contact: self.contact_view(&user, Some(&record)),
        });
        Ok(())
    }
}

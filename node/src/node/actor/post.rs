//! Posts in the actor: composing (mentions, reply quotes), broadcasts,
//! edits and retractions going out and coming in, and the notification
//! decision for every new message.
//!
//! A change goes to every user the original went to, as control content
//! in the durable outbox (retried like a message, never a history row of
//! its own). Receivers apply it only to messages of the change's verified
//! author (`store/changes.rs`).

use tincan_core::notify::{NotifyInput, Urgency};
use tincan_core::post::{excerpt, mention_tokens, validate_text, Change, Post, PostError, Quote};
use tincan_core::wire::RefuseReason;
use tincan_core::{Content, DeviceCert, MessageId, Opened, UserId};

use super::inbound::Rejection;
use super::Actor;
use crate::event::{BroadcastView, MuteView};
use crate::event::{MessageView, NodeEvent};
use crate::keystore::OsEntropy;
use crate::node::NodeError;
use crate::store::{ChangeOutcome, Direction, MessageExtras, MessageRecord, MessageState};

impl Actor {
    /// Sends `text` to `peer` as a reply to message `reply_to` (an id or
    /// a prefix of at least 6 hex characters), quoting its start.
    pub(super) fn send_reply(
        &mut self,
        peer: &str,
        text: &str,
        reply_to: &str,
    ) -> Result<MessageView, NodeError> {
        let users = self.resolve_users(peer)?;
        self.send_post(&users, text, Some(reply_to), false)
    }

    /// Mutes a conversation: a peer by name, else a room by name or id,
    /// else a peer by a prefix or a fingerprint (so that `mute lunch` mutes
    /// the room Lunch, not a user whose name starts with "Lun").
    pub(super) fn mute(&mut self, text: &str, muted: bool) -> Result<MuteView, NodeError> {
        let user = match self.book.resolve_mention(text) {
            Some(user) => Some(user),
            None if self.resolve_room(text).is_ok() => None,
            None => Some(self.book.resolve(text)?),
        };
        let (key, id, name) = match user {
            Some(user) => (
                user.0.to_vec(),
                user.to_string(),
                self.book.display_name(&user),
            ),
            None => {
                let room = self.resolve_room(text)?;
                (room.0.to_vec(), room.to_string(), self.room_name(&room))
            }
        };
        self.store.set_muted(&key, muted, self.now)?;
        tracing::info!(conversation = %id, muted, "conversation mute changed");
        Ok(MuteView {
            peer: id,
            name,
            muted,
        })
    }

    /// The users of `bob,carol,dave`, each once, in order.
    pub(super) fn resolve_users(&self, peer: &str) -> Result<Vec<UserId>, NodeError> {
        let mut users = Vec::new();
        for name in peer.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let user = self.book.resolve(name)?;
            if !users.contains(&user) {
                users.push(user);
            }
        }
        if users.is_empty() {
            users.push(self.book.resolve(peer)?);
        }
        Ok(users)
    }

    /// Every known device certificate of `users`; a blocked user or one
    /// without a known device is an error naming them.
    pub(super) fn certs_of(&self, users: &[UserId]) -> Result<Vec<DeviceCert>, NodeError> {
        if let Some(user) = users.iter().find(|u| self.is_blocked(u)) {
            return Err(NodeError::Blocked(self.book.display_name(user)));
        }
        let mut certs: Vec<DeviceCert> = Vec::new();
        for user in users {
            let before = certs.len();
            certs.extend(self.device_certs_of(user));
            if certs.len() == before {
                return Err(NodeError::NoDevices(self.book.display_name(user)));
            }
        }
        Ok(certs)
    }

    /// Composes and queues a message to `users`: `@name` mentions of known
    /// users are resolved, `reply_to` (an id or prefix of a message in the
    /// conversation) is quoted. A message without extras travels as plain
    /// [`Content::Text`], so older builds still read it.
    pub(super) fn send_post(
        &mut self,
        users: &[UserId],
        text: &str,
        reply_to: Option<&str>,
        broadcast: bool,
    ) -> Result<MessageView, NodeError> {
        self.check_not_removed()?;
        validate_text(text).map_err(post_error)?;
        let certs = self.certs_of(users)?;
        let me = self.identity.user_id();
        let reply_to = reply_to.map(|id| self.quote(users, id)).transpose()?;
        let mentions: Vec<UserId> = mention_tokens(text)
            .into_iter()
            .filter_map(|name| self.book.resolve_mention(name))
            .filter(|user| *user != me)
            .fold(Vec::new(), |mut acc, user| {
                if !acc.contains(&user) {
                    acc.push(user);
                }
                acc
            });
        let post = Post {
            text: text.to_string(),
            reply_to,
            mentions,
            broadcast,
        };
        post.validate().map_err(post_error)?;
        let plain = post.reply_to.is_none() && post.mentions.is_empty() && !post.broadcast;
        let content = if plain {
            Content::Text {
                text: post.text.clone(),
            }
        } else {
            Content::Post(post.clone())
        };
        let now = self.now;
        let id = MessageId::random(&mut OsEntropy);
        // One history row per conversation, all sharing the message id.
        let records: Vec<MessageRecord> = users
            .iter()
            .map(|user| MessageRecord {
                id,
                direction: Direction::Out,
                peer: *user,
                from_user: me,
                from_device: self.identity.device_id(),
                to_user: *user,
                text: post.text.clone(),
                sent_at_ms: now,
                received_at_ms: None,
                state: MessageState::Queued,
                error: None,
                room: None,
                system: false,
                extras: MessageExtras::of_post(&post),
            })
            .collect();
        let to = users[0];
        self.queue_envelope(id, now, &content, to, &certs, &records)?;
        self.sync_sent(id, now, users, content);
        tracing::info!(message = %id, to = %to, users = users.len(), devices = certs.len(), "queued message");
        self.emit_state(id, to, MessageState::Queued, None);
        Ok(MessageView::from(&records[0]))
    }

    /// The quote of message `id` (a prefix) in the conversation with one
    /// of `users`.
    fn quote(&self, users: &[UserId], id: &str) -> Result<Quote, NodeError> {
        let found = self
            .store
            .find_messages(id, None)?
            .into_iter()
            .find(|m| users.contains(&m.peer))
            .ok_or_else(|| NodeError::NoSuchMessage(id.to_string()))?;
        Ok(Quote {
            id: found.id,
            author: found.from_user,
            excerpt: excerpt(&found.text),
        })
    }

    pub(super) fn broadcast(
        &mut self,
        text: &str,
        group: Option<&str>,
    ) -> Result<BroadcastView, NodeError> {
        let me = self.identity.user_id();
        let users: Vec<UserId> = match group {
            Some(group) => self.group_members(group)?,
            None => {
                let mut online: Vec<UserId> = self
                    .book
                    .devices()
                    .filter(|d| {
                        self.presence_of(&d.device, self.reachable(&d.device))
                            .online
                    })
                    .map(|d| d.user)
                    .collect();
                online.sort();
                online.dedup();
                online
            }
        }
        .into_iter()
        .filter(|u| *u != me && !self.is_blocked(u))
        .collect();
        if users.is_empty() {
            return Err(NodeError::NoOneToBroadcast(group.map(str::to_string)));
        }
        let message = self.send_post(&users, text, None, true)?;
        Ok(BroadcastView {
            message,
            to: users.iter().map(ToString::to_string).collect(),
            names: users.iter().map(|u| self.book.display_name(u)).collect(),
        })
    }

    /// Whether a device can be reached now (directly, or via the uplink
    /// while the directory shows it online).
    pub(super) fn reachable(&self, device: &tincan_core::DeviceId) -> bool {
        self.conns.contains_key(device)
            || (self.uplink_conn().is_some() && self.remote.get(device).is_some_and(|r| r.online))
    }

    /// Edits or retracts one of this user's messages everywhere it went.
    pub(super) fn change_own(
        &mut self,
        id: &str,
        make: impl FnOnce(MessageId) -> Change,
    ) -> Result<Vec<MessageView>, NodeError> {
        self.check_not_removed()?;
        let me = self.identity.user_id();
        let rows = self.store.find_messages(id, Some(&me))?;
        let Some(first) = rows.first() else {
            return Err(NodeError::NoSuchMessage(id.to_string()));
        };
        let target = first.id;
        if rows.iter().any(|r| r.id != target) {
            return Err(NodeError::AmbiguousMessage(id.to_string()));
        }
        if first.extras.retracted {
            return Err(NodeError::Retracted(id.to_string()));
        }
        let change = make(target);
        change.validate().map_err(post_error)?;
        // A 1:1 row's peer is the other side; a room row's peer is its
        // author (us), so a room message's change goes to the room's
        // current members instead (pairwise sealed: changes are rare).
        let mut users: Vec<UserId> = Vec::new();
        for row in &rows {
            let of_row: Vec<UserId> = match row.room {
                Some(room) => self.room_members(&room),
                None => vec![row.peer],
            };
            for user in of_row {
                if user != me && !users.contains(&user) {
                    users.push(user);
                }
            }
        }
        // Devices of users that have since been blocked or vanished are
        // skipped: the change reaches whoever can still get it, and this
        // user's other devices, which show the message too.
        let mut certs: Vec<DeviceCert> = users
            .iter()
            .filter(|u| !self.is_blocked(u))
            .flat_map(|u| self.device_certs_of(u))
            .collect();
        certs.extend(self.own_other_devices());
        let now = self.now;
        self.store.apply_change(&me, &change, now)?;
        if !certs.is_empty() {
            let change_id = MessageId::random(&mut OsEntropy);
            self.queue_envelope(
                change_id,
                now,
                &Content::Change(change),
                users.first().copied().unwrap_or(me),
                &certs,
                &[],
            )?;
        }
        let changed: Vec<MessageView> = self
            .store
            .find_messages(&target.to_string(), Some(&me))?
            .iter()
            .map(MessageView::from)
            .collect();
        for message in &changed {
            self.emit(NodeEvent::MessageChanged {
                message: message.clone(),
            });
        }
        tracing::info!(message = %target, users = users.len(), "changed own message");
        Ok(changed)
    }

    /// A received post (a plain text is a post without extras): stored
    /// once per `(sender device, id)`, pending changes applied, notified,
    /// and copied to this user's devices the sender did not seal it for.
    pub(super) fn on_post(
        &mut self,
        opened: &Opened,
        post: Post,
        now: u64,
    ) -> Result<(), Rejection> {
        let sent_at = opened.created_at_ms;
        if self.take_post(opened.id, &opened.sender, sent_at, &post, now)? {
            self.copy_to_missed_devices(opened, post, now);
        }
        Ok(())
    }

    /// Stores and shows an incoming post from `sender`; `Ok(true)` when it
    /// is new here, `Ok(false)` for a duplicate.
    pub(super) fn take_post(
        &mut self,
        id: MessageId,
        sender: &DeviceCert,
        sent_at_ms: u64,
        post: &Post,
        now: u64,
    ) -> Result<bool, Rejection> {
        if let Err(e) = post.validate() {
            return Err(Rejection::Refuse(match e {
                PostError::TooLong { .. } => RefuseReason::TooLarge,
                other => RefuseReason::Other(other.to_string()),
            }));
        }
        let author = sender.user_id();
        let record = MessageRecord {
            id,
            direction: Direction::In,
            peer: author,
            from_user: author,
            from_device: sender.device_id(),
            to_user: self.identity.user_id(),
            text: post.text.clone(),
            sent_at_ms,
            received_at_ms: Some(now),
            state: MessageState::Delivered,
            error: None,
            room: None,
            system: false,
            extras: MessageExtras::of_post(post),
        };
        match self.store.insert_message(&record) {
            Ok(true) => {
                tracing::info!(message = %id, from = %author, "message received");
                let record = self.apply_pending_change(record);
                let from_name = self.book.display_name(&author);
                self.emit(NodeEvent::MessageReceived {
                    message: MessageView::from(&record),
                    from_name: from_name.clone(),
                });
                if !record.extras.retracted {
                    self.notify(&record, from_name);
                }
                Ok(true)
            }
            Ok(false) => {
                tracing::debug!(message = %id, "duplicate message acknowledged again");
                Ok(false)
            }
            Err(e) => {
                tracing::error!(message = %id, error = %e, "cannot store incoming message; not acknowledged");
                Err(Rejection::Retry)
            }
        }
    }

    /// Applies a change that arrived before `record`, returning the row as
    /// stored afterwards.
    fn apply_pending_change(&mut self, record: MessageRecord) -> MessageRecord {
        let pending = match self
            .store
            .take_pending_change(&record.from_user, &record.id)
        {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read pending changes");
                None
            }
        };
        let Some((change, at)) = pending else {
            return record;
        };
        if let Err(e) = self.store.apply_change(&record.from_user, &change, at) {
            tracing::warn!(error = %e, "cannot apply a pending change");
        }
        self.store
            .message(&record.id, &record.from_device)
            .ok()
            .flatten()
            .unwrap_or(record)
    }

    /// A received edit or retraction.
    pub(super) fn on_change(&mut self, opened: &Opened, change: Change) -> Result<(), Rejection> {
        if let Err(e) = change.validate() {
            return Err(Rejection::Refuse(match e {
                PostError::TooLong { .. } => RefuseReason::TooLarge,
                other => RefuseReason::Other(other.to_string()),
            }));
        }
        let author = opened.sender.user_id();
        let target = change.target();
        match self
            .store
            .apply_change(&author, &change, opened.created_at_ms)
        {
            Ok(ChangeOutcome::Applied) => {
                tracing::info!(message = %target, %author, "message changed by its author");
                if let Ok(rows) = self.store.find_messages(&target.to_string(), Some(&author)) {
                    for row in rows {
                        self.emit(NodeEvent::MessageChanged {
                            message: MessageView::from(&row),
                        });
                    }
                }
                Ok(())
            }
            Ok(outcome) => {
                tracing::debug!(message = %target, ?outcome, "change not applied now");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store a change; not acknowledged");
                Err(Rejection::Retry)
            }
        }
    }

    /// Raises a notification for a new incoming message if the rule says so.
    pub(super) fn notify(&self, record: &MessageRecord, from_name: String) {
        // A room is muted as a whole; a 1:1 conversation by its peer.
        let conversation = match record.room {
            Some(room) => room.0.to_vec(),
            None => record.peer.0.to_vec(),
        };
        let input = NotifyInput {
            presence: self.chat.presence.effective(),
            window_focused: self.chat.focused,
            muted: self.store.is_muted(&conversation).unwrap_or(false),
            mentioned: record.extras.mentions.contains(&self.identity.user_id()),
            own: record.from_user == self.identity.user_id(),
        };
        let Some(urgency) = self.chat.notify.decide(&input) else {
            return;
        };
        let body = crate::notifier::body_of(&record.text);
        let mention = urgency == Urgency::Mention;
        if self.chat.desktop_notifications {
            crate::notifier::show(from_name.clone(), body.clone(), mention);
        }
        self.emit(NodeEvent::Notification {
            title: from_name,
            body,
            urgency: if mention { "mention" } else { "normal" }.into(),
            peer: record.peer.to_string(),
            message_id: record.id.to_string(),
            room: record.room.map(|r| r.to_string()),
        });
    }
}

fn post_error(e: PostError) -> NodeError {
    match e {
        PostError::Empty => NodeError::EmptyText,
        PostError::TooLong { len, max } => NodeError::TooLarge { len, max },
        other => NodeError::Post(other),
    }
}

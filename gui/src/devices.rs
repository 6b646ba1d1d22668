//! "Your devices" on the settings screen: this user's devices (this one,
//! the others, online or not), a pairing code for a new one and removal.
//! The node does the work (`device pair`, `device list`, `device remove`);
//! this panel only asks and shows.

use iced::widget::{button, column, row, text};
use iced::{Alignment, Element, Fill};
use tincan_node::api::{DeviceView, PairingView};

use crate::forms::Outcome;
use crate::style::{self, SMALL, TEXT};
use crate::timefmt;

/// The panel's state.
#[derive(Clone, Debug, Default)]
pub struct DevicesPanel {
    /// This user's devices, once the node answered.
    pub list: Option<Result<Vec<DeviceView>, String>>,
    /// The pairing code on show, until it is used, fails or is replaced.
    pub pairing: Option<PairingView>,
    /// The last pairing or removal, for the user.
    pub outcome: Outcome,
    /// The device whose removal waits for a second click.
    pub confirm_remove: Option<String>,
}

/// What happened in the panel (or to this user's devices).
#[derive(Clone, Debug)]
pub enum Message {
    /// The node listed the devices.
    Loaded(Result<Vec<DeviceView>, String>),
    /// "Pair a new device".
    Pair,
    /// The node's answer: a code to type on the new device.
    PairShown(Result<PairingView, String>),
    /// "Remove" on a device (asks again before it acts).
    Remove(String),
    /// "Keep it": the removal was not confirmed.
    KeepIt,
    /// The node's answer to a removal.
    Removed(Result<DeviceView, String>),
    /// A new device was paired with the code shown.
    Paired(DeviceView),
    /// Pairing ended without a device (wrong or expired code).
    PairingFailed(String),
    /// A device of this user was removed (here or on another device).
    Changed,
}

/// What the app must do for the panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the state change.
    None,
    /// List the devices again.
    Load,
    /// Ask the node for a pairing code.
    Pair,
    /// Remove this device (id).
    Remove(String),
}

impl DevicesPanel {
    /// Handles one message.
    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::Loaded(list) => {
                self.list = Some(list);
                Action::None
            }
            Message::Pair => {
                self.outcome = None;
                Action::Pair
            }
            Message::PairShown(Ok(pairing)) => {
                self.pairing = Some(pairing);
                Action::None
            }
            Message::PairShown(Err(e)) => {
                self.pairing = None;
                self.outcome = Some(Err(e));
                Action::None
            }
            Message::Remove(device) => {
                if self.confirm_remove.as_deref() == Some(device.as_str()) {
                    self.confirm_remove = None;
                    self.outcome = None;
                    Action::Remove(device)
                } else {
                    self.confirm_remove = Some(device);
                    Action::None
                }
            }
            Message::KeepIt => {
                self.confirm_remove = None;
                Action::None
            }
            Message::Removed(result) => {
                self.outcome = Some(result.map(|d| {
                    format!(
                        "Removed {}: it gets nothing new, and every peer refuses it.",
                        d.label
                    )
                }));
                Action::Load
            }
            Message::Paired(device) => {
                self.pairing = None;
                self.outcome = Some(Ok(format!(
                    "Paired {}: messages to you now reach it too.",
                    device.label
                )));
                Action::Load
            }
            Message::PairingFailed(reason) => {
                self.pairing = None;
                self.outcome = Some(Err(format!("Pairing failed: {reason}")));
                Action::None
            }
            Message::Changed => Action::Load,
        }
    }

    /// The panel.
    pub fn view(&self) -> Element<'_, Message> {
        let mut col = column![].spacing(8);
        match &self.list {
            None => col = col.push(text("Asking the node…").size(SMALL).style(style::weak_text)),
            Some(Err(e)) => col = col.push(text(e).size(SMALL).style(style::error_text)),
            Some(Ok(devices)) => {
                for device in devices {
                    col = col.push(self.device_row(device));
                }
            }
        }
        match &self.pairing {
            Some(pairing) => {
                col = col.push(
                    column![
                        text(format!("Pairing code: {}", pairing.code)).size(TEXT + 4.0),
                        text(format!(
                            "On the new device run `tincan device add {}` (same LAN, or add \
                             --peer HOST:PORT). Valid once, until {}.",
                            pairing.code,
                            timefmt::clock(pairing.expires_at)
                        ))
                        .size(SMALL)
                        .style(style::weak_text),
                    ]
                    .spacing(4),
                )
            }
            None => {
                col = col.push(
                    button(text("Pair a new device").size(TEXT))
                        .on_press(Message::Pair)
                        .padding([8, 16]),
                )
            }
        }
        match &self.outcome {
            Some(Ok(done)) => col = col.push(text(done).size(SMALL).style(style::ok_text)),
            Some(Err(e)) => col = col.push(text(e).size(SMALL).style(style::error_text)),
            None => {}
        }
        col.into()
    }

    fn device_row<'a>(&'a self, device: &'a DeviceView) -> Element<'a, Message> {
        let state = if device.this {
            "this device"
        } else if device.online {
            "online"
        } else {
            "offline"
        };
        let short: String = device.device_id.chars().take(8).collect();
        let mut line = row![text(format!("{} · {short} · {state}", device.label))
            .size(TEXT)
            .width(Fill)]
        .spacing(8)
        .align_y(Alignment::Center);
        if !device.this {
            if self.confirm_remove.as_deref() == Some(device.device_id.as_str()) {
                line = line
                    .push(
                        button(text("Really remove").size(SMALL))
                            .on_press(Message::Remove(device.device_id.clone()))
                            .style(button::danger)
                            .padding([6, 12]),
                    )
                    .push(
                        button(text("Keep it").size(SMALL))
                            .on_press(Message::KeepIt)
                            .padding([6, 12]),
                    );
            } else {
                line = line.push(
                    button(text("Remove").size(SMALL))
                        .on_press(Message::Remove(device.device_id.clone()))
                        .padding([6, 12]),
                );
            }
        }
        line.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, label: &str, this: bool) -> DeviceView {
        DeviceView {
            device_id: id.into(),
            label: label.into(),
            this,
            online: this,
            added_at: 0,
        }
    }

    #[test]
    fn removal_needs_a_second_click_on_the_same_device() {
        let mut panel = DevicesPanel::default();
        panel.update(Message::Loaded(Ok(vec![
            device("aaaa", "laptop", true),
            device("bbbb", "desk", false),
        ])));
        assert_eq!(panel.update(Message::Remove("bbbb".into())), Action::None);
        assert_eq!(panel.update(Message::KeepIt), Action::None);
        assert_eq!(panel.update(Message::Remove("bbbb".into())), Action::None);
        assert_eq!(
            panel.update(Message::Remove("bbbb".into())),
            Action::Remove("bbbb".into())
        );
        assert_eq!(
            panel.update(Message::Removed(Ok(device("bbbb", "desk", false)))),
            Action::Load
        );
        assert!(matches!(&panel.outcome, Some(Ok(s)) if s.contains("Removed desk")));
    }

    #[test]
    fn a_code_shows_until_pairing_ends() {
        let mut panel = DevicesPanel::default();
        assert_eq!(panel.update(Message::Pair), Action::Pair);
        let code = PairingView {
            code: "ABCDE-FGHJK".into(),
            expires_at: 0,
        };
        panel.update(Message::PairShown(Ok(code)));
        assert!(panel.pairing.is_some());
        assert_eq!(
            panel.update(Message::PairingFailed("wrong pairing code".into())),
            Action::None
        );
        assert!(panel.pairing.is_none());
        assert!(matches!(&panel.outcome, Some(Err(e)) if e.contains("wrong pairing code")));
        panel.update(Message::Pair);
        assert_eq!(
            panel.update(Message::Paired(device("cccc", "desk", false))),
            Action::Load
        );
        assert!(matches!(&panel.outcome, Some(Ok(s)) if s.contains("Paired desk")));
    }
}

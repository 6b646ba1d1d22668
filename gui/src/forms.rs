//! The two small forms that the first-run and settings screens share:
//! joining an organisation (a membership file's path or the pasted invite)
//! and setting the relay (`HOST:PORT#FINGERPRINT`). Each owns its message;
//! its `update` returns what to save, the app saves it in a task and hands
//! the outcome back as `Done`.

use iced::widget::{button, column, row, text, text_input};
use iced::{Alignment, Element, Fill};
use tincan_node::config::RelayAddr;

use crate::profile::OrgInfo;
use crate::style::{self, SMALL, TEXT};

/// How a save went: a sentence either way.
pub type Outcome = Option<Result<String, String>>;

fn outcome_line<'a, M: 'a>(outcome: &'a Outcome) -> Option<Element<'a, M>> {
    match outcome {
        Some(Ok(done)) => Some(text(done).size(SMALL).style(style::ok_text).into()),
        Some(Err(error)) => Some(text(error).size(SMALL).style(style::error_text).into()),
        None => None,
    }
}

/// Joining an organisation.
#[derive(Clone, Debug, Default)]
pub struct OrgForm {
    /// Path or pasted invite.
    pub input: String,
    /// A join is being saved.
    pub busy: bool,
    /// The last result.
    pub outcome: Outcome,
}

/// What the user did in the organisation form.
#[derive(Clone, Debug)]
pub enum OrgMessage {
    /// The text changed.
    Input(String),
    /// Join (button or Enter).
    Join,
    /// The app's answer.
    Done(Result<OrgInfo, String>),
}

impl OrgForm {
    /// Handles a message; returns the source to join, if the user asked.
    pub fn update(&mut self, message: OrgMessage) -> Option<String> {
        match message {
            OrgMessage::Input(text) => {
                self.input = text;
                self.outcome = None;
                None
            }
            OrgMessage::Join if self.busy => None,
            OrgMessage::Join if self.input.trim().is_empty() => {
                self.outcome = Some(Err(
                    "Paste the invite text or the path of the membership file.".into(),
                ));
                None
            }
            OrgMessage::Join => {
                self.busy = true;
                self.outcome = None;
                Some(self.input.trim().to_string())
            }
            OrgMessage::Done(result) => {
                self.busy = false;
                self.outcome = Some(result.map(|org| format!("Joined {}.", org.describe())));
                if matches!(self.outcome, Some(Ok(_))) {
                    self.input.clear();
                }
                None
            }
        }
    }

    /// Whether a join succeeded since the form was made.
    pub fn joined(&self) -> bool {
        matches!(self.outcome, Some(Ok(_)))
    }

    /// The form.
    pub fn view(&self) -> Element<'_, OrgMessage> {
        let input = text_input(
            "Path of the membership file, or paste tincan-membership:…",
            &self.input,
        )
        .on_input(OrgMessage::Input)
        .on_submit(OrgMessage::Join)
        .size(TEXT)
        .padding(8);
        let join = button(text(if self.busy { "Joining…" } else { "Join" }).size(TEXT))
            .on_press_maybe((!self.busy).then_some(OrgMessage::Join))
            .padding([8, 16]);
        let mut form = column![row![input, join].spacing(8).align_y(Alignment::Center)]
            .spacing(6)
            .width(Fill);
        if let Some(line) = outcome_line(&self.outcome) {
            form = form.push(line);
        }
        form.into()
    }
}

/// Setting (or removing) the relay.
#[derive(Clone, Debug, Default)]
pub struct RelayForm {
    /// `HOST:PORT#FINGERPRINT`, or empty for none.
    pub input: String,
    /// A save is running.
    pub busy: bool,
    /// The last result.
    pub outcome: Outcome,
}

/// What the user did in the relay form.
#[derive(Clone, Debug)]
pub enum RelayMessage {
    /// The text changed.
    Input(String),
    /// Save (button or Enter).
    Save,
    /// The app's answer: the relay as saved (`None`: removed).
    Done(Result<Option<String>, String>),
}

impl RelayForm {
    /// A form showing the relay `current`.
    pub fn new(current: Option<String>) -> Self {
        Self {
            input: current.unwrap_or_default(),
            ..Self::default()
        }
    }

    /// Handles a message; returns the relay text to save (checked: an
    /// address that does not parse is reported here and never saved).
    pub fn update(&mut self, message: RelayMessage) -> Option<String> {
        match message {
            RelayMessage::Input(text) => {
                self.input = text;
                self.outcome = None;
                None
            }
            RelayMessage::Save if self.busy => None,
            RelayMessage::Save => {
                let input = self.input.trim();
                if !input.is_empty() {
                    if let Err(e) = RelayAddr::parse(input) {
                        self.outcome = Some(Err(crate::profile::capitalise(&e.to_string())));
                        return None;
                    }
                }
                self.busy = true;
                self.outcome = None;
                Some(input.to_string())
            }
            RelayMessage::Done(result) => {
                self.busy = false;
                self.outcome = Some(result.map(|relay| match relay {
                    Some(relay) => format!("Relay set to {relay}."),
                    None => "No relay: this machine stays on its LAN.".into(),
                }));
                None
            }
        }
    }

    /// Whether a save succeeded since the form was made.
    pub fn saved(&self) -> bool {
        matches!(self.outcome, Some(Ok(_)))
    }

    /// The form.
    pub fn view(&self) -> Element<'_, RelayMessage> {
        let input = text_input("relay.example.com:7443#FINGERPRINT", &self.input)
            .on_input(RelayMessage::Input)
            .on_submit(RelayMessage::Save)
            .size(TEXT)
            .padding(8);
        let save = button(text(if self.busy { "Saving…" } else { "Save" }).size(TEXT))
            .on_press_maybe((!self.busy).then_some(RelayMessage::Save))
            .padding([8, 16]);
        let mut form = column![row![input, save].spacing(8).align_y(Alignment::Center)]
            .spacing(6)
            .width(Fill);
        if let Some(line) = outcome_line(&self.outcome) {
            form = form.push(line);
        }
        form.into()
    }
}

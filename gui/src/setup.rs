//! The first-run screen, shown when the home has no identity: it asks for
//! the display name (prefilled from the OS user), creates the identity and
//! lets the node start; then two optional steps — join an organisation,
//! set a relay — before the main window.

use iced::widget::{button, center, column, container, row, space, text, text_input, Id};
use iced::{Alignment, Element, Fill};

use crate::forms::{OrgForm, OrgMessage, RelayForm, RelayMessage};
use crate::profile;
use crate::style::{self, HEADING, SMALL, TEXT};

/// The name field, focused when the screen opens.
pub const NAME_ID: Id = Id::new("setup-name");

/// Which page of the first run is showing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// "What is your name?"
    Name,
    /// Organisation and relay, both optional.
    Extras,
}

/// The first-run screen's state.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The page.
    pub step: Step,
    /// The name being typed.
    pub name: String,
    /// Why the name is not accepted, shown under the field.
    pub name_error: Option<String>,
    /// The identity is being created.
    pub busy: bool,
    /// Joining an organisation.
    pub org: OrgForm,
    /// Setting a relay.
    pub relay: RelayForm,
}

/// What the user did on the first-run screen.
#[derive(Clone, Debug)]
pub enum Message {
    /// The name changed.
    Name(String),
    /// Continue (button or Enter).
    Create,
    /// The app's answer: the name as stored, or why not.
    Created(Result<String, String>),
    /// The organisation form.
    Org(OrgMessage),
    /// The relay form.
    Relay(RelayMessage),
    /// "Start using tincan".
    Finish,
}

/// What the app must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the state change.
    None,
    /// Create the identity named so, then start the node.
    CreateIdentity(String),
    /// Join with this membership source.
    JoinOrg(String),
    /// Save this relay.
    SetRelay(String),
    /// Show the main window; `changed`: the organisation or relay was set
    /// after the node started, so it must restart to use them.
    Finish {
        /// Whether a restart is needed.
        changed: bool,
    },
}

impl Setup {
    /// A first-run screen with the name prefilled.
    pub fn new(suggested_name: String) -> Self {
        Self {
            step: Step::Name,
            name: suggested_name,
            name_error: None,
            busy: false,
            org: OrgForm::default(),
            relay: RelayForm::default(),
        }
    }

    /// Handles one message.
    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::Name(name) => {
                // Say at once when it gets too long, not only on Continue.
                self.name_error = match profile::check_name(&name) {
                    Err(e) if !name.trim().is_empty() => Some(e),
                    _ => None,
                };
                self.name = name;
                Action::None
            }
            Message::Create if self.busy => Action::None,
            Message::Create => match profile::check_name(&self.name) {
                Ok(name) => {
                    self.name_error = None;
                    self.busy = true;
                    Action::CreateIdentity(name)
                }
                Err(e) => {
                    self.name_error = Some(e);
                    Action::None
                }
            },
            Message::Created(Ok(name)) => {
                self.busy = false;
                self.name = name;
                self.step = Step::Extras;
                Action::None
            }
            Message::Created(Err(e)) => {
                self.busy = false;
                self.name_error = Some(e);
                Action::None
            }
            Message::Org(message) => match self.org.update(message) {
                Some(source) => Action::JoinOrg(source),
                None => Action::None,
            },
            Message::Relay(message) => match self.relay.update(message) {
                Some(relay) => Action::SetRelay(relay),
                None => Action::None,
            },
            Message::Finish => Action::Finish {
                changed: self.org.joined() || self.relay.saved(),
            },
        }
    }

    /// The screen.
    pub fn view(&self) -> Element<'_, Message> {
        let page = match self.step {
            Step::Name => self.name_page(),
            Step::Extras => self.extras_page(),
        };
        center(
            container(page)
                .padding(28)
                .max_width(620)
                .style(style::card),
        )
        .padding(20)
        .into()
    }

    fn name_page(&self) -> Element<'_, Message> {
        let field = text_input("Your name", &self.name)
            .id(NAME_ID)
            .on_input(Message::Name)
            .on_submit(Message::Create)
            .size(TEXT + 2.0)
            .padding(10);
        let button = button(text(if self.busy { "Creating…" } else { "Continue" }).size(TEXT))
            .on_press_maybe((!self.busy).then_some(Message::Create))
            .padding([10, 22]);
        let mut page = column![
            text("Welcome to tincan").size(HEADING + 8.0),
            text(
                "Chat with colleagues on this network — no server, no account. \
                 Everything you send is end-to-end encrypted."
            )
            .size(TEXT),
            text("What name should colleagues see?").size(TEXT),
            field,
        ]
        .spacing(14);
        if let Some(error) = &self.name_error {
            page = page.push(text(error).size(SMALL).style(style::error_text));
        }
        page.push(row![space().width(Fill), button]).into()
    }

    fn extras_page(&self) -> Element<'_, Message> {
        column![
            text(format!("Hello, {}!", self.name)).size(HEADING + 8.0),
            text("Your identity is created and tincan is running: colleagues on this network show up by themselves.")
                .size(TEXT),
            text("Two optional steps, for offices with several branches:").size(TEXT),
            text("Organisation").size(HEADING),
            text("Your admin gives you a membership file (or an invite to paste). Members of the organisation can reach each other across branches.")
                .size(SMALL)
                .style(style::weak_text),
            self.org.view().map(Message::Org),
            text("Relay").size(HEADING),
            text("The relay that bridges your branches, as your admin wrote it: HOST:PORT#FINGERPRINT.")
                .size(SMALL)
                .style(style::weak_text),
            self.relay.view().map(Message::Relay),
            row![
                text("You can change both later in Settings.")
                    .size(SMALL)
                    .style(style::weak_text)
                    .width(Fill),
                button(text("Start using tincan").size(TEXT))
                    .on_press(Message::Finish)
                    .padding([10, 22]),
            ]
            .align_y(Alignment::Center),
        ]
        .spacing(12)
        .into()
    }
}

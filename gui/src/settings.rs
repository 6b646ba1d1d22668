//! The settings screen: name (read-only), organisation, relay, gateway
//! preference, theme and zoom. Notifications and the download folder have
//! marked places for their issues. Node settings are saved to the home's
//! files; an embedded node restarts to apply them, a daemon is told to.

use iced::widget::{button, column, container, pick_list, row, scrollable, space, text};
use iced::{Alignment, Element, Fill};
use tincan_core::GatewayPreference;

use crate::backend::Mode;
use crate::forms::{OrgForm, OrgMessage, RelayForm, RelayMessage};
use crate::prefs::{Prefs, ThemeChoice};
use crate::profile::{OrgInfo, Profile};
use crate::style::{self, HEADING, SMALL, TEXT};

/// Zoom levels offered (the `--scale` flag takes any value).
pub const SCALES: [Scale; 5] = [Scale(1.0), Scale(1.25), Scale(1.5), Scale(1.75), Scale(2.0)];

/// A zoom factor, shown as a percentage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale(pub f32);

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0} %", self.0 * 100.0)
    }
}

/// The settings screen's state.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The home's identity and node settings, once read.
    pub profile: Option<Result<Profile, String>>,
    /// Joining an organisation.
    pub org: OrgForm,
    /// The relay.
    pub relay: RelayForm,
    /// The last gateway-preference save.
    pub gateway_outcome: Option<Result<String, String>>,
    /// Node settings changed since the node started.
    pub needs_restart: bool,
}

/// What the user did on the settings screen.
#[derive(Clone, Debug)]
pub enum Message {
    /// The home's files were read.
    Loaded(Result<Profile, String>),
    /// The organisation form.
    Org(OrgMessage),
    /// Joined an organisation: what, and the home's files read again.
    OrgJoined(Box<OrgInfo>, Box<Result<Profile, String>>),
    /// The relay form.
    Relay(RelayMessage),
    /// A gateway preference was picked.
    Gateway(GatewayPreference),
    /// The app's answer to saving it.
    GatewaySaved(Result<GatewayPreference, String>),
    /// A theme was picked.
    Theme(ThemeChoice),
    /// A zoom level was picked.
    Scale(Scale),
    /// "Restart the node now".
    Restart,
    /// "Back to conversations" (or Escape).
    Back,
}

/// What the app must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Nothing beyond the state change.
    None,
    /// Join with this membership source.
    JoinOrg(String),
    /// Save this relay.
    SetRelay(String),
    /// Save this gateway preference.
    SetGateway(GatewayPreference),
    /// Use and remember this theme.
    Theme(ThemeChoice),
    /// Use and remember this zoom.
    Scale(f32),
    /// Restart the embedded node (to apply saved node settings).
    Restart,
    /// Back to the main screen.
    Back,
}

impl Settings {
    /// Handles one message.
    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::Loaded(profile) => {
                if let Ok(p) = &profile {
                    self.relay = RelayForm::new(p.relay.clone());
                }
                self.profile = Some(profile);
                Action::None
            }
            Message::Org(message) => {
                let done = matches!(message, OrgMessage::Done(Ok(_)));
                let action = self.org.update(message);
                if done {
                    self.needs_restart = true;
                }
                action.map_or(Action::None, Action::JoinOrg)
            }
            Message::OrgJoined(joined, profile) => {
                let _ = self.org.update(OrgMessage::Done(Ok(*joined)));
                self.profile = Some(*profile);
                self.needs_restart = true;
                Action::None
            }
            Message::Relay(message) => {
                let done = matches!(message, RelayMessage::Done(Ok(_)));
                let action = self.relay.update(message);
                if done {
                    self.needs_restart = true;
                }
                action.map_or(Action::None, Action::SetRelay)
            }
            Message::Gateway(gateway) => {
                if let Some(Ok(profile)) = &mut self.profile {
                    profile.gateway = gateway;
                }
                Action::SetGateway(gateway)
            }
            Message::GatewaySaved(result) => {
                if result.is_ok() {
                    self.needs_restart = true;
                }
                self.gateway_outcome = Some(result.map(|g| match g {
                    GatewayPreference::Prefer => {
                        "Saved: this machine prefers to be its branch's gateway.".to_string()
                    }
                    GatewayPreference::Auto => {
                        "Saved: this machine may be elected gateway.".to_string()
                    }
                    GatewayPreference::Never => {
                        "Saved: this machine will never be the gateway.".to_string()
                    }
                }));
                Action::None
            }
            Message::Theme(theme) => Action::Theme(theme),
            Message::Scale(scale) => Action::Scale(scale.0),
            Message::Restart => {
                self.needs_restart = false;
                Action::Restart
            }
            Message::Back => Action::Back,
        }
    }

    /// The screen.
    pub fn view<'a>(&'a self, prefs: &'a Prefs, mode: Mode) -> Element<'a, Message> {
        let mut page = column![row![
            text("Settings").size(HEADING + 6.0).width(Fill),
            button(text("Back to conversations").size(TEXT))
                .on_press(Message::Back)
                .padding([8, 16]),
        ]
        .align_y(Alignment::Center)]
        .spacing(16)
        .padding(24)
        .max_width(760);

        if self.needs_restart {
            let note = match mode {
                Mode::Embedded => row![
                    text("Saved. The node restarts to use the new settings.")
                        .size(TEXT)
                        .width(Fill),
                    button(text("Restart now").size(TEXT))
                        .on_press(Message::Restart)
                        .padding([8, 16]),
                ],
                Mode::Attached => row![text(
                    "Saved. Restart the tincan daemon (`tincan run`) to use the new settings."
                )
                .size(TEXT)],
            };
            page = page.push(
                container(note.align_y(Alignment::Center))
                    .padding(12)
                    .style(style::card),
            );
        }

        page = page.push(section(
            "You",
            match &self.profile {
                None => text("Reading…").size(SMALL).into(),
                Some(Err(e)) => text(e).size(SMALL).style(style::error_text).into(),
                Some(Ok(p)) => column![
                    text(&p.name).size(HEADING),
                    text(format!(
                        "User id {} (fingerprint {})",
                        p.user_id, p.fingerprint
                    ))
                    .size(SMALL)
                    .style(style::weak_text),
                    text("The name is part of your identity; it cannot be changed here yet.")
                        .size(SMALL)
                        .style(style::weak_text),
                ]
                .spacing(4)
                .into(),
            },
        ));

        let org_now: Element<'_, Message> = match &self.profile {
            Some(Ok(Profile { org: Some(org), .. })) => {
                text(format!("Member of {}", org.describe()))
                    .size(TEXT)
                    .into()
            }
            Some(Ok(Profile {
                org_error: Some(e), ..
            })) => text(format!("The membership file is unusable: {e}"))
                .size(SMALL)
                .style(style::error_text)
                .into(),
            _ => text("Not in an organisation: this machine talks to its LAN only.")
                .size(TEXT)
                .into(),
        };
        page = page.push(section(
            "Organisation",
            column![org_now, self.org.view().map(Message::Org)]
                .spacing(8)
                .into(),
        ));

        page = page.push(section(
            "Relay",
            column![
                text("HOST:PORT#FINGERPRINT as your admin gave it; empty for none.")
                    .size(SMALL)
                    .style(style::weak_text),
                self.relay.view().map(Message::Relay),
            ]
            .spacing(8)
            .into(),
        ));

        let gateway = match &self.profile {
            Some(Ok(p)) => Some(p.gateway),
            _ => None,
        };
        let mut gateway_col = column![
            row![
                text("Branch gateway").size(TEXT).width(Fill),
                pick_list(
                    [
                        GatewayPreference::Auto,
                        GatewayPreference::Prefer,
                        GatewayPreference::Never
                    ],
                    gateway,
                    Message::Gateway
                )
                .text_size(TEXT),
            ]
            .align_y(Alignment::Center),
            text("auto: may be elected; prefer: an always-on desktop; never: a laptop or kiosk.")
                .size(SMALL)
                .style(style::weak_text),
        ]
        .spacing(6);
        if let Some(outcome) = &self.gateway_outcome {
            gateway_col = gateway_col.push(match outcome {
                Ok(done) => text(done).size(SMALL).style(style::ok_text),
                Err(e) => text(e).size(SMALL).style(style::error_text),
            });
        }
        page = page.push(section("Network", gateway_col.into()));

        page = page.push(section(
            "Appearance",
            column![
                row![
                    text("Theme").size(TEXT).width(Fill),
                    pick_list(
                        [ThemeChoice::Light, ThemeChoice::Dark],
                        Some(prefs.theme),
                        Message::Theme
                    )
                    .text_size(TEXT),
                ]
                .align_y(Alignment::Center),
                row![
                    text("Zoom").size(TEXT).width(Fill),
                    pick_list(SCALES, Some(Scale(prefs.scale)), Message::Scale).text_size(TEXT),
                ]
                .align_y(Alignment::Center),
                text("Ctrl + and Ctrl − zoom too; Ctrl 0 resets.")
                    .size(SMALL)
                    .style(style::weak_text),
            ]
            .spacing(8)
            .into(),
        ));

        page = page.push(section(
            "Notifications",
            text("Desktop notifications for new messages come with the notifications feature.")
                .size(SMALL)
                .style(style::weak_text)
                .into(),
        ));
        page = page.push(section(
            "Files",
            text("The download folder comes with file transfer.")
                .size(SMALL)
                .style(style::weak_text)
                .into(),
        ));
        page = page.push(space().height(8));

        scrollable(container(page).center_x(Fill))
            .height(Fill)
            .into()
    }
}

fn section<'a>(title: &'a str, body: Element<'a, Message>) -> Element<'a, Message> {
    container(column![text(title).size(HEADING), body].spacing(10))
        .padding(16)
        .width(Fill)
        .style(style::card)
        .into()
}

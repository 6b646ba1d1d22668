//! The settings screen: display name, presence idle time, organisation,
//! relay, gateway preference, download folder, notifications, theme,
//! zoom, and this user's devices (`devices.rs`). Node settings are saved
//! to the home's files; an embedded node restarts to apply them, a daemon
//! is told to.

use std::path::PathBuf;

use iced::widget::{
    button, checkbox, column, container, pick_list, row, scrollable, space, text, text_input,
};
use iced::{Alignment, Element, Fill};
use tincan_core::GatewayPreference;

use crate::backend::Mode;
use crate::devices::{self, DevicesPanel};
use crate::forms::{OrgForm, OrgMessage, Outcome, RelayForm, RelayMessage};
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

/// Idle times offered before presence turns away by itself.
pub const IDLE_TIMES: [Idle; 6] = [
    Idle(300),
    Idle(600),
    Idle(900),
    Idle(1800),
    Idle(3600),
    Idle(0),
];

/// Seconds of idle time before auto-away (0: never), shown in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idle(pub u64);

impl std::fmt::Display for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("Never"),
            s if s % 3600 == 0 => write!(f, "After {} h", s / 3600),
            s if s % 60 == 0 => write!(f, "After {} min", s / 60),
            s => write!(f, "After {s} s"),
        }
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
    /// The display name being edited.
    pub name: String,
    /// The last name save.
    pub name_outcome: Outcome,
    /// The last idle-time save.
    pub idle_outcome: Outcome,
    /// The download folder being edited.
    pub downloads: String,
    /// The last download-folder save.
    pub downloads_outcome: Outcome,
    /// This user's devices.
    pub devices: DevicesPanel,
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
    /// The name field changed.
    NameInput(String),
    /// Save the name (button or Enter).
    NameSave,
    /// The app's answer: the name as stored.
    NameSaved(Result<String, String>),
    /// An idle time was picked.
    Idle(Idle),
    /// The app's answer to saving it.
    IdleSaved(Result<u64, String>),
    /// The download-folder field changed.
    DownloadsInput(String),
    /// Save the download folder (button or Enter).
    DownloadsSave,
    /// "Choose…": the native folder picker.
    DownloadsPick,
    /// The picker's answer (`None`: cancelled).
    DownloadsPicked(Option<PathBuf>),
    /// The app's answer: the folder as saved (`None`: the default).
    DownloadsSaved(Result<Option<String>, String>),
    /// Notifications turned on or off.
    Notifications(bool),
    /// The devices panel.
    Devices(devices::Message),
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
    /// Save this display name (checked).
    SetName(String),
    /// Save this idle time.
    SetIdle(u64),
    /// Save this download folder (empty: the default).
    SetDownloads(String),
    /// Open the folder picker.
    PickDownloads,
    /// Use and remember notifications on or off.
    Notifications(bool),
    /// Ask the node about this user's devices.
    Devices(devices::Action),
}

impl Settings {
    /// Handles one message.
    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::Loaded(profile) => {
                if let Ok(p) = &profile {
                    self.relay = RelayForm::new(p.relay.clone());
                    self.name = p.name.clone();
                    self.downloads = p.downloads.clone().unwrap_or_default();
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
            Message::NameInput(name) => {
                self.name_outcome = match crate::profile::check_name(&name) {
                    Err(e) if !name.trim().is_empty() => Some(Err(e)),
                    _ => None,
                };
                self.name = name;
                Action::None
            }
            Message::NameSave => match crate::profile::check_name(&self.name) {
                Ok(name) => {
                    self.name_outcome = None;
                    Action::SetName(name)
                }
                Err(e) => {
                    self.name_outcome = Some(Err(e));
                    Action::None
                }
            },
            Message::NameSaved(result) => {
                if let Ok(name) = &result {
                    self.needs_restart = true;
                    self.name = name.clone();
                    if let Some(Ok(profile)) = &mut self.profile {
                        profile.name = name.clone();
                    }
                }
                self.name_outcome =
                    Some(result.map(|name| format!("Saved: colleagues will see {name}.")));
                Action::None
            }
            Message::Idle(idle) => {
                if let Some(Ok(profile)) = &mut self.profile {
                    profile.away_after_secs = idle.0;
                }
                Action::SetIdle(idle.0)
            }
            Message::IdleSaved(result) => {
                if result.is_ok() {
                    self.needs_restart = true;
                }
                self.idle_outcome = Some(result.map(|secs| match secs {
                    0 => "Saved: presence never turns away by itself.".to_string(),
                    secs => format!(
                        "Saved: away {} when idle.",
                        Idle(secs).to_string().to_lowercase()
                    ),
                }));
                Action::None
            }
            Message::DownloadsInput(text) => {
                self.downloads = text;
                self.downloads_outcome = None;
                Action::None
            }
            Message::DownloadsSave => Action::SetDownloads(self.downloads.clone()),
            Message::DownloadsPick => Action::PickDownloads,
            Message::DownloadsPicked(None) => Action::None,
            Message::DownloadsPicked(Some(folder)) => {
                self.downloads = folder.display().to_string();
                Action::SetDownloads(self.downloads.clone())
            }
            Message::DownloadsSaved(result) => {
                if let Ok(folder) = &result {
                    self.needs_restart = true;
                    self.downloads = folder.clone().unwrap_or_default();
                }
                self.downloads_outcome = Some(result.map(|folder| match folder {
                    Some(folder) => format!("Saved: accepted files go to {folder}."),
                    None => "Saved: accepted files go to your Downloads folder.".to_string(),
                }));
                Action::None
            }
            Message::Notifications(on) => Action::Notifications(on),
            Message::Devices(message) => match self.devices.update(message) {
                devices::Action::None => Action::None,
                action => Action::Devices(action),
            },
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

        page = page.push(section("You", self.you()));
        page = page.push(section(
            "Your devices",
            self.devices.view().map(Message::Devices),
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
            column![
                checkbox(prefs.notifications)
                    .label("Desktop notifications for new messages and files")
                    .on_toggle(Message::Notifications)
                    .text_size(TEXT),
                text(
                    "Only while the window is in the background, and never while you are \
                     Busy (do not disturb)."
                )
                .size(SMALL)
                .style(style::weak_text),
            ]
            .spacing(6)
            .into(),
        ));
        page = page.push(section("Files", self.files()));
        page = page.push(space().height(8));

        scrollable(container(page).center_x(Fill))
            .height(Fill)
            .into()
    }
}

impl Settings {
    fn you(&self) -> Element<'_, Message> {
        let Some(profile) = &self.profile else {
            return text("Reading…").size(SMALL).into();
        };
        let profile = match profile {
            Ok(p) => p,
            Err(e) => return text(e).size(SMALL).style(style::error_text).into(),
        };
        let name = text_input("Your name", &self.name)
            .on_input(Message::NameInput)
            .on_submit(Message::NameSave)
            .size(TEXT)
            .padding(8);
        let mut col = column![
            text("Display name").size(SMALL).style(style::weak_text),
            row![
                name,
                button(text("Save").size(TEXT))
                    .on_press(Message::NameSave)
                    .padding([8, 16])
            ]
            .spacing(8)
            .align_y(Alignment::Center),
            text(format!(
                "User id {} (fingerprint {})",
                profile.user_id, profile.fingerprint
            ))
            .size(SMALL)
            .style(style::weak_text),
        ]
        .spacing(6);
        if let Some(line) = outcome_line(&self.name_outcome) {
            col = col.push(line);
        }
        col = col.push(
            row![
                text("Show me as away when idle").size(TEXT).width(Fill),
                pick_list(
                    IDLE_TIMES,
                    Some(Idle(profile.away_after_secs)),
                    Message::Idle
                )
                .text_size(TEXT),
            ]
            .align_y(Alignment::Center),
        );
        if let Some(line) = outcome_line(&self.idle_outcome) {
            col = col.push(line);
        }
        col.into()
    }

    fn files(&self) -> Element<'_, Message> {
        let folder = text_input("Default: your Downloads folder", &self.downloads)
            .on_input(Message::DownloadsInput)
            .on_submit(Message::DownloadsSave)
            .size(TEXT)
            .padding(8);
        let mut col = column![
            text("Download folder").size(TEXT),
            row![
                folder,
                button(text("Choose…").size(TEXT))
                    .on_press(Message::DownloadsPick)
                    .style(style::framed_button)
                    .padding([8, 12]),
                button(text("Save").size(TEXT))
                    .on_press(Message::DownloadsSave)
                    .padding([8, 16]),
            ]
            .spacing(8)
            .align_y(Alignment::Center),
        ]
        .spacing(6);
        if let Some(line) = outcome_line(&self.downloads_outcome) {
            col = col.push(line);
        }
        col.into()
    }
}

fn outcome_line<'a>(outcome: &'a Outcome) -> Option<Element<'a, Message>> {
    match outcome {
        Some(Ok(done)) => Some(text(done).size(SMALL).style(style::ok_text).into()),
        Some(Err(error)) => Some(text(error).size(SMALL).style(style::error_text).into()),
        None => None,
    }
}

fn section<'a>(title: &'a str, body: Element<'a, Message>) -> Element<'a, Message> {
    container(column![text(title).size(HEADING), body].spacing(10))
        .padding(16)
        .width(Fill)
        .style(style::card)
        .into()
}

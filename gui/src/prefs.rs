//! What only the desktop app remembers (theme, zoom), in `gui.toml` of the
//! home: `config.toml` belongs to the node and refuses unknown keys.

use serde::{Deserialize, Serialize};
use tincan_node::api::Home;

/// Light or dark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeChoice {
    /// Dark text on light backgrounds.
    #[default]
    Light,
    /// Light text on dark backgrounds.
    Dark,
}

impl ThemeChoice {
    /// The iced theme.
    pub fn theme(self) -> iced::Theme {
        match self {
            Self::Light => iced::Theme::Light,
            Self::Dark => iced::Theme::Dark,
        }
    }
}

impl std::fmt::Display for ThemeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Light => "Light",
            Self::Dark => "Dark",
        })
    }
}

/// The app's own settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    /// Light or dark.
    pub theme: ThemeChoice,
    /// Zoom factor on top of the desktop's scaling (1.0 = 100 %).
    pub scale: f32,
    /// Desktop notifications (and window attention) for new messages.
    pub notifications: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            theme: ThemeChoice::Light,
            scale: 1.0,
            notifications: true,
        }
    }
}

fn path(home: &Home) -> std::path::PathBuf {
    home.root().join("gui.toml")
}

impl Prefs {
    /// Reads `gui.toml`; a missing or unreadable file gives the defaults
    /// (these are cosmetic: never a reason not to start).
    pub fn load(home: &Home) -> Self {
        let Ok(text) = std::fs::read_to_string(path(home)) else {
            return Self::default();
        };
        let mut prefs: Self = toml::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring unreadable gui.toml");
            Self::default()
        });
        if !crate::options::SCALE_RANGE.contains(&prefs.scale) {
            prefs.scale = 1.0;
        }
        prefs
    }

    /// Writes `gui.toml` (temp file + rename).
    pub fn save(&self, home: &Home) -> Result<(), String> {
        let text = toml::to_string(self).map_err(|e| e.to_string())?;
        home.create().map_err(|e| e.to_string())?;
        let target = path(home);
        let tmp = target.with_extension("toml.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &target))
            .map_err(|e| format!("cannot save {}: {e}", target.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage_is_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path());
        assert_eq!(Prefs::load(&home), Prefs::default());
        let prefs = Prefs {
            theme: ThemeChoice::Dark,
            scale: 1.5,
            notifications: false,
        };
        prefs.save(&home).expect("save");
        assert_eq!(Prefs::load(&home), prefs);
        std::fs::write(path(&home), "theme = 7").expect("write");
        assert_eq!(Prefs::load(&home), Prefs::default());
    }
}

//! File transfers as the window shows them — sizes, rates, time left,
//! progress, what a state means — and the desktop's side of files: the
//! native picker (rfd: the XDG portal on Linux) and "Open folder"
//! (`xdg-open`). The blocking parts are async or run on tokio's blocking
//! pool; none of this runs on the UI thread.

use std::path::{Path, PathBuf};

use tincan_node::api::TransferState;
use tincan_node::api::TransferView;

/// `1.5 MiB`, `820 KiB`, `12 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `2.3 MiB/s`.
pub fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", size(bytes_per_sec))
}

/// `42 s left`, `3 min left`, `1 h 5 min left`.
pub fn eta(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s left"),
        60..=3599 => format!("{} min left", secs.div_ceil(60)),
        _ => format!("{} h {} min left", secs / 3600, (secs % 3600) / 60),
    }
}

/// Done so far, 0.0 ..= 1.0.
pub fn progress(t: &TransferView) -> f32 {
    if t.size == 0 {
        return if t.state == TransferState::Done {
            1.0
        } else {
            0.0
        };
    }
    (t.bytes_done as f64 / t.size as f64).clamp(0.0, 1.0) as f32
}

/// Whether the transfer can still move (and so be cancelled).
pub fn is_active(t: &TransferView) -> bool {
    matches!(
        t.state,
        TransferState::Offered
            | TransferState::Accepted
            | TransferState::Transferring
            | TransferState::Paused
    )
}

/// Whether this is an offer waiting for our answer.
pub fn awaits_answer(t: &TransferView) -> bool {
    t.direction == "in" && t.state == TransferState::Offered
}

/// The state in words, from our side.
pub fn describe(t: &TransferView) -> String {
    let incoming = t.direction == "in";
    match t.state {
        TransferState::Offered if incoming => format!("{} offers this", t.peer_name),
        TransferState::Offered => format!("Waiting for {} to accept", t.peer_name),
        TransferState::Accepted => "Starting…".into(),
        TransferState::Transferring => {
            let mut line = format!("{} of {}", size(t.bytes_done), size(t.size));
            if let Some(r) = t.rate {
                line.push_str(&format!(" · {}", rate(r)));
            }
            if let Some(secs) = t.eta_secs {
                line.push_str(&format!(" · {}", eta(secs)));
            }
            line
        }
        TransferState::Paused => format!(
            "Paused at {} of {}: {} is offline; it resumes by itself",
            size(t.bytes_done),
            size(t.size),
            t.peer_name
        ),
        TransferState::Done if incoming => match t.saved_as.first() {
            Some(path) => format!("Saved as {path}"),
            None => "Received".into(),
        },
        TransferState::Done => format!("Sent to {}", t.peer_name),
        TransferState::Failed => format!(
            "Failed: {}",
            t.error.as_deref().unwrap_or("the transfer gave up")
        ),
        TransferState::Rejected if incoming => "You declined it".into(),
        TransferState::Rejected => format!("{} declined it", t.peer_name),
        TransferState::Cancelled => "Cancelled".into(),
    }
}

/// The folder that holds a finished incoming transfer.
pub fn folder_of(t: &TransferView) -> Option<PathBuf> {
    if t.direction != "in" || t.state != TransferState::Done {
        return None;
    }
    match t.saved_as.first() {
        Some(saved) => Path::new(saved).parent().map(Path::to_path_buf),
        None => t.dest.as_ref().map(PathBuf::from),
    }
}

/// Whether the desktop can show a file picker at all. On Linux rfd asks
/// the XDG desktop portal over the session bus, then falls back to
/// `zenity`; with neither it answers like a cancel, which would look like
/// a dead button — so say it instead.
pub fn picker_available() -> Result<(), String> {
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return Ok(());
    }
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some();
    let zenity = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("zenity").is_file()));
    if bus || zenity {
        Ok(())
    } else {
        Err(
            "This desktop offers no file picker (no desktop portal, no zenity): \
             drop the files onto the window instead."
                .into(),
        )
    }
}

/// Asks the desktop for files to send (the XDG portal on Linux, the
/// system dialog elsewhere); `None` when the user cancelled or there is no
/// picker.
pub async fn pick_files() -> Option<Vec<PathBuf>> {
    let files = rfd::AsyncFileDialog::new()
        .set_title("Send files")
        .pick_files()
        .await?;
    Some(files.into_iter().map(|f| f.path().to_path_buf()).collect())
}

/// Asks the desktop for a folder (the download folder).
pub async fn pick_folder() -> Option<PathBuf> {
    rfd::AsyncFileDialog::new()
        .set_title("Download folder")
        .pick_folder()
        .await
        .map(|f| f.path().to_path_buf())
}

/// Shows `folder` in the file manager. Blocking (it waits for the opener
/// to start): run it on the blocking pool.
pub fn open_folder(folder: &Path) -> Result<(), String> {
    if !folder.is_dir() {
        return Err(format!(
            "The folder {} is not there any more.",
            folder.display()
        ));
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("Cannot open {}: {opener}: {e}.", folder.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(size(12), "12 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(rate(1024 * 1024), "1.0 MiB/s");
        assert_eq!(eta(42), "42 s left");
        assert_eq!(eta(61), "2 min left");
        assert_eq!(eta(3900), "1 h 5 min left");
        assert!(open_folder(Path::new("/nonexistent/folder"))
            .unwrap_err()
            .contains("not there"));
    }
}

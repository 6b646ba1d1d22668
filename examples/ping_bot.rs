//! A bot that answers "ping" with "pong", through a running node's control
//! socket — the same JSON-lines API the `tincan` CLI uses.
//!
//! ```text
//! tincan --home ~/bot init --name pingbot
//! tincan --home ~/bot run &
//! cargo run --example ping_bot -- ~/bot
//! ```

use anyhow::{Context, Result};
use tincan::{ControlClient, Home, NodeEvent, Request};

#[tokio::main]
async fn main() -> Result<()> {
    let home = std::env::args()
        .nth(1)
        .map(Home::new)
        .or_else(Home::platform_default)
        .context("usage: ping_bot HOME_DIR")?;
    // One connection streams events, another sends commands.
    let mut events = ControlClient::connect(&home).await?.watch().await?;
    let mut commands = ControlClient::connect(&home).await?;
    eprintln!("ping_bot: listening on {}", home.root().display());
    loop {
        let event = match events.next().await {
            Ok(event) => event,
            // Events of kinds this bot does not know are skipped, not fatal.
            Err(tincan::ControlError::Protocol(e)) if !e.contains("closed") => continue,
            Err(e) => return Err(e.into()),
        };
        if let NodeEvent::MessageReceived { message, from_name } = event {
            if message.text.trim().eq_ignore_ascii_case("ping") {
                let reply = Request::Send {
                    peer: message.from.clone(),
                    text: "pong".into(),
                    wait: false,
                    timeout_secs: None,
                    reply_to: None,
                };
                match commands.request(&reply).await {
                    Ok(_) => eprintln!("ping_bot: pong → {from_name}"),
                    Err(e) => eprintln!("ping_bot: cannot answer {from_name}: {e}"),
                }
            }
        }
    }
}

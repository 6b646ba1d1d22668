//! A client of the control socket: what the CLI and bots use.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tincan_node::ControlError> {
//! use tincan_node::{ControlClient, Home, Request};
//! let mut client = ControlClient::connect(&Home::new("/tmp/alice")).await?;
//! let peers = client.request(&Request::Peers).await?;
//! println!("{peers}");
//! # Ok(()) }
//! ```

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::protocol::{Reply, Request};
use crate::event::NodeEvent;
use crate::home::Home;

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No daemon listens on this home's control socket.
    #[error("tincan is not running for home {0} (start it with `tincan run`)")]
    NotRunning(String),
    /// The daemon refused the request.
    #[error("{0}")]
    Refused(String),
    /// The connection broke or the daemon sent something unreadable.
    #[error("control socket: {0}")]
    Protocol(String),
}

/// A connection to a running daemon.
#[derive(Debug)]
pub struct ControlClient {
    #[cfg(unix)]
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    #[cfg(unix)]
    writer: tokio::net::unix::OwnedWriteHalf,
}

#[cfg(unix)]
impl ControlClient {
    /// Connects to the daemon of `home`.
    pub async fn connect(home: &Home) -> Result<Self, ControlError> {
        let stream = tokio::net::UnixStream::connect(home.control_socket_path())
            .await
            .map_err(|_| ControlError::NotRunning(home.root().display().to_string()))?;
        let (read, writer) = stream.into_split();
        Ok(Self {
            reader: BufReader::new(read),
            writer,
        })
    }

    async fn read_line(&mut self) -> Result<String, ControlError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .await
            .map_err(|e| ControlError::Protocol(e.to_string()))?;
        if n == 0 {
            return Err(ControlError::Protocol(
                "the daemon closed the connection".into(),
            ));
        }
        Ok(line)
    }

    /// Sends one request and returns its `data`.
    pub async fn request(&mut self, request: &Request) -> Result<serde_json::Value, ControlError> {
        let mut bytes =
            serde_json::to_vec(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
        bytes.push(b'\n');
        self.writer
            .write_all(&bytes)
            .await
            .map_err(|e| ControlError::Protocol(e.to_string()))?;
        let line = self.read_line().await?;
        let reply: Reply =
            serde_json::from_str(&line).map_err(|e| ControlError::Protocol(e.to_string()))?;
        if reply.ok {
            Ok(reply.data.unwrap_or(serde_json::Value::Null))
        } else {
            Err(ControlError::Refused(reply.error.unwrap_or_default()))
        }
    }

    /// Switches this connection to the event stream.
    pub async fn watch(mut self) -> Result<EventStream, ControlError> {
        self.request(&Request::Watch).await?;
        Ok(EventStream { client: self })
    }

    /// [`Self::watch`] for a desktop window that shows notifications
    /// itself: the node raises none while this stream is open (it holds
    /// the node's `focus`).
    pub async fn watch_as_window(mut self) -> Result<EventStream, ControlError> {
        self.request(&Request::Focus { focused: true }).await?;
        self.watch().await
    }
}

/// Events from a daemon, one per [`EventStream::next`].
#[derive(Debug)]
pub struct EventStream {
    client: ControlClient,
}

impl EventStream {
    /// The next event as raw JSON (what `tincan watch` prints).
    pub async fn next_raw(&mut self) -> Result<String, ControlError> {
        self.client
            .read_line()
            .await
            .map(|l| l.trim_end().to_string())
    }

    /// The next event, decoded.
    pub async fn next(&mut self) -> Result<NodeEvent, ControlError> {
        let line = self.next_raw().await?;
        serde_json::from_str(&line).map_err(|e| ControlError::Protocol(e.to_string()))
    }
}

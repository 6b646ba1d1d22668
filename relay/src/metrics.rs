//! Prometheus metrics and the minimal HTTP responder that serves them
//! (`GET /metrics`, text exposition format via `prometheus-client`).
//!
//! Every metric is named `tincan_relay_*`; counters end in `_total`.

use std::net::SocketAddr;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A label set with one `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind (answer kind, refusal reason).
    pub kind: String,
}

/// Every metric of the relay.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open QUIC connections (registered or not).
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_accepted: Counter,
    /// Devices registered directly now.
    pub devices_connected: Gauge,
    /// Devices online now: connected directly or through their branch's
    /// gateway (what `tincan-relay status` counts as online). Set when
    /// the metrics are read.
    pub devices_online: Gauge,
    /// Route requests handled.
    pub routes: Counter,
    /// Answers returned to senders, by kind.
    pub answers: Family<KindLabel, Counter>,
    /// Items stored in custody.
    pub mail_stored: Counter,
    /// Devices of items that another node of the cluster settled.
    pub forwarded: Counter,
    /// Stored items delivered (or settled) and deleted.
    pub mail_delivered: Counter,
    /// Stored items deleted at their TTL.
    pub mail_expired: Counter,
    /// Items in storage now.
    pub mail_items: Gauge,
    /// Leases granted (including renewals).
    pub leases_granted: Counter,
    /// Lease claims refused.
    pub leases_refused: Counter,
    /// Connections refused, by reason.
    pub refused_connections: Family<KindLabel, Counter>,
    /// Connection attempts answered with a stateless Retry (address
    /// validation under load).
    pub retries: Counter,
    /// Connections admitted and not registered yet.
    pub handshakes_pending: Gauge,
    /// Route requests refused by the rate limit.
    pub rate_limited: Counter,
    /// Sealed file items stored (uploads taken).
    pub file_items_stored: Counter,
    /// Sealed file items served to devices.
    pub file_items_served: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tincan_relay");
        let m = Metrics {
            registry: Registry::default(),
            connections: Gauge::default(),
            connections_accepted: Counter::default(),
            devices_connected: Gauge::default(),
            devices_online: Gauge::default(),
            routes: Counter::default(),
            answers: Family::default(),
            mail_stored: Counter::default(),
            forwarded: Counter::default(),
            mail_delivered: Counter::default(),
            mail_expired: Counter::default(),
            mail_items: Gauge::default(),
            leases_granted: Counter::default(),
            leases_refused: Counter::default(),
            refused_connections: Family::default(),
            retries: Counter::default(),
            handshakes_pending: Gauge::default(),
            rate_limited: Counter::default(),
            file_items_stored: Counter::default(),
            file_items_served: Counter::default(),
        };
        registry.register(
            "file_items_stored",
            "Sealed file items uploaded and stored",
            m.file_items_stored.clone(),
        );
        registry.register(
            "file_items_served",
            "Sealed file items served",
            m.file_items_served.clone(),
        );
        registry.register(
            "connections",
            "Open QUIC connections",
            m.connections.clone(),
        );
        registry.register(
            "connections_accepted",
            "QUIC connections accepted",
            m.connections_accepted.clone(),
        );
        registry.register(
            "devices_connected",
            "Devices registered directly",
            m.devices_connected.clone(),
        );
        registry.register(
            "devices_online",
            "Devices online: connected directly or through their branch gateway",
            m.devices_online.clone(),
        );
        registry.register("routes", "Route requests handled", m.routes.clone());
        registry.register("answers", "Answers to senders by kind", m.answers.clone());
        registry.register(
            "mail_stored",
            "Items taken into custody",
            m.mail_stored.clone(),
        );
        registry.register(
            "forwarded",
            "Devices of items another relay node of the cluster settled",
            m.forwarded.clone(),
        );
        registry.register(
            "mail_delivered",
            "Stored items delivered and deleted",
            m.mail_delivered.clone(),
        );
        registry.register(
            "mail_expired",
            "Stored items expired",
            m.mail_expired.clone(),
        );
        registry.register("mail_items", "Items in storage", m.mail_items.clone());
        registry.register("leases_granted", "Leases granted", m.leases_granted.clone());
        registry.register(
            "leases_refused",
            "Lease claims refused",
            m.leases_refused.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections refused by reason",
            m.refused_connections.clone(),
        );
        registry.register(
            "retries",
            "Connection attempts sent a stateless retry",
            m.retries.clone(),
        );
        registry.register(
            "handshakes_pending",
            "Connections admitted and not registered yet",
            m.handshakes_pending.clone(),
        );
        registry.register(
            "rate_limited",
            "Route requests refused by the rate limit",
            m.rate_limited.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one answer of `kind`.
    pub fn answer(&self, kind: &str) {
        self.answers
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts one refused connection.
    pub fn refused(&self, reason: &str) {
        self.refused_connections
            .get_or_create(&KindLabel {
                kind: reason.into(),
            })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped; `body`
/// gives the exposition text (so gauges read from elsewhere are fresh).
pub async fn serve(listener: TcpListener, body: std::sync::Arc<dyn Fn() -> String + Send + Sync>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let body = body.clone();
        tokio::spawn(async move {
            let mut head = vec![0u8; 4096];
            let mut len = 0;
            // Read until the end of the request head, for at most 5 s.
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < head.len() {
                    match stream.read(&mut head[len..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                    if head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let request = String::from_utf8_lossy(&head[..len]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let response = if request.starts_with("GET ") && path == "/metrics" {
                let body = body();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                let body = "not found: GET /metrics\n";
                format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

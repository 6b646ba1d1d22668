//! The raw quinn baselines, in this process on 127.0.0.1 with the same
//! UDP socket settings as the relay's (`tests/common/bench.rs`
//! `raw_quinn_pair`): handshakes per second, each followed by one
//! request and answer of a Register's and a Welcome's size, under the
//! relay's Retry policy (a stateless Retry once more than [`RETRY_ABOVE`]
//! connections are unfinished); and request/answer round trips per second
//! on one connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// The relay's default `--retry-above`.
const RETRY_ABOVE: usize = 32;

/// Answers each stream of `conn` with `answer_len` bytes once its request
/// has arrived whole.
async fn answer_streams(conn: quinn::Connection, answer_len: usize) {
    let answer = vec![7u8; answer_len];
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        let answer = answer.clone();
        tokio::spawn(async move {
            if recv.read_to_end(1 << 20).await.is_ok() {
                let _ = send.write_all(&answer).await;
                let _ = send.finish();
                let _ = send.stopped().await;
            }
        });
    }
}

/// One request of `request_len` bytes and its answer on a new stream.
async fn exchange(conn: &quinn::Connection, request: &[u8]) -> Result<usize, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(request).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    let answer = recv.read_to_end(1 << 20).await.map_err(|e| e.to_string())?;
    Ok(answer.len())
}

/// `n` handshakes, `concurrency` at a time, each with one exchange; the
/// time they took. Panics if one fails (the baseline must be whole).
pub async fn handshakes(
    n: usize,
    concurrency: usize,
    request_len: usize,
    answer_len: usize,
) -> Duration {
    let (server, client) = super::bench::raw_quinn_pair();
    let addr = server.local_addr().expect("addr");
    let pending = Arc::new(AtomicUsize::new(0));
    let accept = {
        let pending = pending.clone();
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                if !incoming.remote_address_validated()
                    && pending.load(Ordering::Relaxed) >= RETRY_ABOVE
                {
                    if let Err(e) = incoming.retry() {
                        e.into_incoming().refuse();
                    }
                    continue;
                }
                pending.fetch_add(1, Ordering::Relaxed);
                let pending = pending.clone();
                tokio::spawn(async move {
                    let conn = incoming.await;
                    // Unfinished until the handshake is done (the relay
                    // counts until Register; close enough for a baseline).
                    pending.fetch_sub(1, Ordering::Relaxed);
                    if let Ok(conn) = conn {
                        answer_streams(conn, answer_len).await;
                    }
                });
            }
        })
    };
    let gate = Arc::new(Semaphore::new(concurrency));
    let request = Arc::new(vec![1u8; request_len]);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await.expect("gate");
        let client = client.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let conn = client
                .connect(addr, "localhost")
                .expect("connect")
                .await
                .expect("raw handshake");
            exchange(&conn, &request).await.expect("raw exchange");
            conn.close(0u32.into(), b"done");
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.expect("raw handshake task");
    }
    let took = start.elapsed();
    accept.abort();
    took
}

/// `n` round trips of `request_len` / `answer_len` bytes on one
/// connection, `inflight` at a time; the time they took.
pub async fn round_trips(
    n: usize,
    inflight: usize,
    request_len: usize,
    answer_len: usize,
) -> Duration {
    let (server, client) = super::bench::raw_quinn_pair();
    let addr = server.local_addr().expect("addr");
    let accept = tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            if let Ok(conn) = incoming.await {
                tokio::spawn(answer_streams(conn, answer_len));
            }
        }
    });
    let conn = client
        .connect(addr, "localhost")
        .expect("connect")
        .await
        .expect("raw handshake");
    let next = Arc::new(AtomicUsize::new(0));
    let request = Arc::new(vec![1u8; request_len]);
    let start = Instant::now();
    let workers: Vec<_> = (0..inflight)
        .map(|_| {
            let (conn, next, request) = (conn.clone(), next.clone(), request.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    exchange(&conn, &request).await.expect("raw round trip");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("raw worker");
    }
    let took = start.elapsed();
    conn.close(0u32.into(), b"done");
    accept.abort();
    took
}

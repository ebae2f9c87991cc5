//! A TCP proxy that holds every chunk for a one-way delay before passing it on: a stand-in
//! for a link between datacenters in `load-tests/run.sh wan`. This is a mock of the network,
//! named as such: `tc qdisc … netem delay` is the real tool, but the kernels these machines
//! run lack the netem qdisc ("Specified qdisc kind is unknown"), and a proxy on loopback is
//! what remains.
//!
//! Usage: `delay_proxy LISTEN UPSTREAM DELAY_FILE`
//!
//! The delay, in milliseconds, is read from DELAY_FILE every 100 ms, so a run can change it
//! without dropping the connections through the proxy (PostgreSQL's replication stream).
//! Each direction is a FIFO: a chunk leaves `delay` after it arrived and never before the
//! chunk ahead of it, so order is kept when the delay shrinks. Bandwidth is not limited.
//! Prints `accepted` on stderr for each connection (the runner waits for the first one).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Reads from `from`, queues each chunk with its due time, and writes it to `to` when due.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<AtomicU64>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            // No timer at all when nothing is due later: tokio's timer has a millisecond
            // granularity, which would add up to a millisecond per hop at delay 0.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let due = Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream, file] = &args[..] else {
        eprintln!("usage: delay_proxy LISTEN UPSTREAM DELAY_FILE");
        std::process::exit(2);
    };
    let delay = Arc::new(AtomicU64::new(0));
    {
        let (delay, file) = (delay.clone(), file.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(text) = tokio::fs::read_to_string(&file).await
                    && let Ok(ms) = text.trim().parse()
                {
                    delay.store(ms, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = upstream.clone();
        let delay = delay.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            eprintln!("accepted");
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::join!(pipe(cr, sw, delay.clone()), pipe(sr, cw, delay));
        });
    }
}

//! A TCP proxy on 127.0.0.1 that stands in for a store far away: every chunk a client
//! sends is held for a fixed delay before it is forwarded upstream (an HTTP GET is one
//! chunk, so every request pays the delay once), and responses pass straight back.
//!
//! It replaced an asyncio proxy in Python, which copied every response byte through the
//! interpreter on the same two cores as the tools it was timing: 0.65–1.43 CPU s a run
//! of `bench/latency.sh 80`, against 0.20–0.48 for this one. Written here rather than
//! taken from a crate because it is tokio's `copy` plus one sleep, and `tc netem` (the
//! usual tool) needs a kernel module this machine does not have.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes read from a client at a time (a request's headers fit in one read).
const CHUNK: usize = 64 * 1024;

/// Listens on `127.0.0.1:listen` and forwards every connection to `127.0.0.1:upstream`,
/// holding each chunk from the client for `delay`. Runs until the process ends.
pub async fn serve(listen: u16, upstream: u16, delay: Duration) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, listen)).await?;
    serve_on(listener, upstream, delay).await
}

/// [`serve`] on a listener already bound (a test binds port 0 and reads the port back).
async fn serve_on(listener: TcpListener, upstream: u16, delay: Duration) -> std::io::Result<()> {
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, upstream));
    loop {
        let (client, _) = listener.accept().await?;
        tokio::spawn(async move {
            // A refused upstream drops the client's connection, as a dead store would.
            if let Ok(server) = TcpStream::connect(upstream).await {
                relay(client, server, delay).await;
            }
        });
    }
}

/// Carries one connection both ways until either side closes it.
async fn relay(client: TcpStream, server: TcpStream, delay: Duration) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            tokio::time::sleep(delay).await;
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let responses = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(requests, responses);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request through the proxy takes at least the delay, and its answer comes back
    /// whole; a second request on the same connection pays the delay again.
    #[tokio::test]
    async fn every_request_waits_the_delay_and_answers_pass_whole() {
        let echo = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let echo_port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 16];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                // Answer each request with 1 MiB, so the answer crosses many reads.
                s.write_all(&vec![buf[0]; 1 << 20]).await.unwrap();
            }
        });
        let proxy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = proxy.local_addr().unwrap().port();
        tokio::spawn(serve_on(proxy, echo_port, Duration::from_millis(150)));
        let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        for byte in [b'a', b'b'] {
            let start = std::time::Instant::now();
            client.write_all(&[byte]).await.unwrap();
            let mut answer = vec![0u8; 1 << 20];
            client.read_exact(&mut answer).await.unwrap();
            assert!(
                start.elapsed() >= Duration::from_millis(150),
                "{:?}",
                start.elapsed()
            );
            assert!(answer.iter().all(|&b| b == byte));
        }
    }
}

//! One keep-alive HTTP/1.1 connection per load worker, driven through hyper's
//! connection API: no pool, no URL parsing or redirect/retry machinery per request.
//!
//! The load tool shares the machine (and its two cores) with the server it measures, so
//! every microsecond it spends per request is taken from the server. reqwest's pooled
//! client cost ≈ 0.12 ms per refresh here (URL parsing, pool checkout, tower layers);
//! this connection sends the same bytes for less.

use anyhow::Context;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use std::net::SocketAddr;

/// A single HTTP/1.1 connection to the server; requests on it run one at a time.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    /// Opens a connection to `base` (`http://host:port`, loopback checked by the caller).
    pub async fn open(base: &str) -> anyhow::Result<Self> {
        let authority = base.strip_prefix("http://").context("the lean client speaks plain http only")?;
        let authority = authority.split('/').next().unwrap_or(authority);
        let addr: SocketAddr = tokio::net::lookup_host(authority).await?.next().context("no address")?;
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        // The connection task ends when the sender is dropped (the worker is done).
        tokio::spawn(connection);
        Ok(Self { sender, host: authority.to_owned() })
    }

    /// `POST path` with a JSON `body` and an `X-Forwarded-For` of `forwarded`: the status
    /// and the whole response body.
    pub async fn post_json(
        &mut self,
        path: &str,
        forwarded: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(hyper::StatusCode, Bytes)> {
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", forwarded)
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        // Our own server's replies are a few KiB; a bound keeps a broken one from filling memory.
        let body = Limited::new(response.into_body(), 1 << 20).collect().await.map_err(|e| anyhow::anyhow!(e))?;
        Ok((status, body.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server that answers two requests on one connection and hands back
    /// what it received: the lean client must keep the connection and send real HTTP.
    #[tokio::test]
    async fn two_posts_travel_on_one_keep_alive_connection() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await?;
            let mut seen = Vec::new();
            let mut buffer = vec![0u8; 4096];
            for answer in ["first", "second"] {
                let mut request = Vec::new();
                // Bounded: a request here is far below 4 KiB and arrives in a few reads.
                for _ in 0..64 {
                    let n = socket.read(&mut buffer).await?;
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n")
                        && request.len() >= end + 4 + content_length(&text)
                    {
                        break;
                    }
                }
                seen.push(String::from_utf8(request)?);
                let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{answer}", answer.len());
                socket.write_all(reply.as_bytes()).await?;
            }
            anyhow::Ok(seen)
        });
        let mut connection = Connection::open(&format!("http://{addr}")).await?;
        let (status, body) = connection.post_json("/t/x/auth/refresh", "10.0.0.1", b"{\"a\":1}".to_vec()).await?;
        assert_eq!((status.as_u16(), &body[..]), (200, &b"first"[..]));
        let (_, body) = connection.post_json("/t/x/auth/refresh", "10.0.0.2", b"{}".to_vec()).await?;
        assert_eq!(&body[..], b"second");
        let seen = server.await??;
        let first = seen[0].to_ascii_lowercase();
        assert!(first.starts_with("post /t/x/auth/refresh http/1.1\r\n"), "{first}");
        assert!(first.contains(&format!("host: {addr}")), "{first}");
        assert!(first.contains("content-type: application/json") && first.contains("x-forwarded-for: 10.0.0.1"));
        assert!(first.ends_with("\r\n\r\n{\"a\":1}"), "{first}");
        assert!(seen[1].to_ascii_lowercase().contains("x-forwarded-for: 10.0.0.2"));
        Ok(())
    }

    fn content_length(head: &str) -> usize {
        head.lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

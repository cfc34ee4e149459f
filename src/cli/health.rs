//! `keydrop healthcheck`: Docker's HEALTHCHECK without curl in the image.

use anyhow::{bail, Context as _};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's internal listener (0.0.0.0 means this host).
    #[arg(long, env = "KEYDROP_INTERNAL_ADDR", default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// Which check: /healthz (process up) or /readyz (database and keys too).
    #[arg(long, default_value = "/healthz", value_parser = ["/healthz", "/readyz"])]
    path: String,
}

/// A minimal HTTP/1.1 GET, so the runtime image needs no curl.
pub async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    let mut addr = args.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let status = tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            args.path
        );
        conn.write_all(request.as_bytes()).await?;
        let mut head = vec![0; 64];
        let n = conn.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    })
    .await
    .with_context(|| format!("{addr} did not answer within 5s"))?
    .with_context(|| format!("cannot reach {addr}"))?;
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        bail!("{}{} answered {code:?}", addr, args.path);
    }
    eprintln!("{}{}: ok", addr, args.path);
    Ok(())
}

//! `keydrop healthcheck`: Docker's HEALTHCHECK without curl in the image.

use anyhow::bail;
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's internal listener (0.0.0.0 means this host; default:
    /// KEYDROP_INTERNAL_ADDR, else 127.0.0.1:8081).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Which check: /healthz (process up) or /readyz (database and keys too).
    #[arg(long, default_value = "/healthz", value_parser = ["/healthz", "/readyz"])]
    path: String,
}

/// One GET through reqwest (already built in for provider checks), so the
/// runtime image needs no curl and the whole status line is read.
pub async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    let mut addr = match args.addr {
        Some(a) => a,
        None => crate::config::internal_addr()?,
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?;
    let status = client
        .get(format!("http://{addr}{}", args.path))
        // The internal listener answers `localhost` whatever its address.
        .header(reqwest::header::HOST, "localhost")
        .send()
        .await
        .map(|r| r.status())
        .map_err(|e| {
            if e.is_timeout() {
                anyhow::anyhow!("{addr} did not answer within 5s")
            } else {
                anyhow::Error::new(e).context(format!("cannot reach {addr}"))
            }
        })?;
    if status != reqwest::StatusCode::OK {
        bail!("{}{} answered {:?}", addr, args.path, status.as_str());
    }
    eprintln!("{}{}: ok", addr, args.path);
    Ok(())
}

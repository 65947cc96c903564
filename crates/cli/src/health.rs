//! `tandem health`: asks a server's plain-text health port (`health_listen`) whether it is
//! SERVING, and exits 0 when it is and 1 otherwise, naming what it heard. For container health
//! checks (the distroless image has no shell or `grpc_health_probe`) and for operators.

use std::time::Duration;

use anyhow::Context;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Options of `tandem health`.
#[derive(Debug, clap::Args)]
pub struct HealthOptions {
    /// The server's health port, `host:port` (its `health_listen`), e.g. `127.0.0.1:7090`.
    /// Plain text only: the API ports speak TLS.
    #[arg(long)]
    pub addr: String,
    /// The service to ask about: empty for the server as a whole (the default), or one it
    /// serves, e.g. `tandem.v1.MenteeService`.
    #[arg(long, default_value = "")]
    pub service: String,
    /// Seconds to wait for the answer, connecting included.
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
}

/// Asks once; `Ok` only when the answer is SERVING.
pub async fn run(options: &HealthOptions) -> anyhow::Result<()> {
    let status = check(options).await?;
    let what = match options.service.as_str() {
        "" => "the server".to_owned(),
        service => service.to_owned(),
    };
    anyhow::ensure!(
        status == ServingStatus::Serving,
        "{what} at {} is {}",
        options.addr,
        status.as_str_name()
    );
    println!("{what} at {} is SERVING", options.addr);
    Ok(())
}

/// Returns the status the health port at `options.addr` reports for `options.service`.
pub async fn check(options: &HealthOptions) -> anyhow::Result<ServingStatus> {
    anyhow::ensure!(options.timeout > 0, "--timeout: must be at least 1 second");
    let addr = &options.addr;
    anyhow::ensure!(
        !addr.contains("://")
            && addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
        "--addr: expected host:port, e.g. 127.0.0.1:7090, got {addr:?}"
    );
    let timeout = Duration::from_secs(options.timeout);
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .with_context(|| format!("--addr: {addr:?} is not an address"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let ask = async {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to the health port {addr}"))?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: options.service.clone(),
            })
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => anyhow::anyhow!(
                    "{addr} does not serve {:?}: {}",
                    options.service,
                    status.message()
                ),
                code => anyhow::anyhow!(
                    "health check at {addr} failed: {code:?}: {}",
                    status.message()
                ),
            })?;
        Ok::<_, anyhow::Error>(answer.into_inner().status())
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| anyhow::anyhow!("{addr} did not answer within {}s", options.timeout))?
}

//! The TXT resolver: hickory-resolver with the system's configuration, or one name
//! server (`GATEHOUSE_DNS_RESOLVER=ip:port`).

use async_trait::async_trait;
use gatehouse_core::dns::{DnsError, TxtResolver};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use std::net::SocketAddr;

/// TXT lookups through hickory-resolver.
#[derive(Debug)]
pub struct HickoryTxt {
    resolver: TokioResolver,
}

impl HickoryTxt {
    /// A resolver asking `server` (UDP, then TCP), or the system's name servers.
    pub fn new(server: Option<SocketAddr>) -> anyhow::Result<Self> {
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            // A machine without a readable resolver configuration still starts; domain
            // verification then answers 503 until one is configured.
            None => TokioResolver::builder_tokio().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no system DNS configuration; set GATEHOUSE_DNS_RESOLVER for domain checks");
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![]),
                    TokioRuntimeProvider::default(),
                )
            }),
        };
        // Ownership proofs must see a record as soon as it is published.
        builder.options_mut().cache_size = 0;
        builder.options_mut().attempts = 2;
        builder.options_mut().timeout = std::time::Duration::from_secs(3);
        Ok(Self { resolver: builder.build()? })
    }
}

#[async_trait]
impl TxtResolver for HickoryTxt {
    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => {
                        Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect::<String>())
                    }
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(DnsError(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// The fallback for machines without a resolver configuration builds, and lookups
    /// then fail (503 at the API) instead of the server refusing to start.
    #[tokio::test]
    async fn a_resolver_without_name_servers_starts_and_fails_lookups() {
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], vec![]),
            TokioRuntimeProvider::default(),
        )
        .build()
        .unwrap();
        let txt = HickoryTxt { resolver };
        assert!(txt.txt("_gatehouse-challenge.example.com").await.is_err());
    }
}

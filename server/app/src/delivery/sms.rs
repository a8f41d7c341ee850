//! SMS providers over HTTP: Twilio's Messages API (any compatible service, the base URL
//! is configurable) and a generic webhook signed with HMAC-SHA256.

use async_trait::async_trait;
use gatehouse_core::messaging::{OutboxMessage, RenderedMessage};
use gatehouse_core::secret::SecretString;
use gatehouse_core::services::delivery::{Transport, TransportError};
use std::time::Duration;

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Maps an HTTP answer: 2xx sent, 429 and 5xx worth retrying, other 4xx final.
async fn outcome(result: reqwest::Result<reqwest::Response>) -> Result<(), TransportError> {
    let response = result.map_err(|e| TransportError::Transient(format!("provider unreachable: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body: String = response.text().await.unwrap_or_default().chars().take(300).collect();
    let error = format!("provider answered {status}: {body}");
    if status.as_u16() == 429 || status.is_server_error() {
        Err(TransportError::Transient(error))
    } else {
        Err(TransportError::Permanent(error))
    }
}

/// Twilio's `POST /2010-04-01/Accounts/{sid}/Messages.json`.
#[derive(Debug, Clone)]
pub struct TwilioTransport {
    client: reqwest::Client,
    endpoint: url::Url,
    account_sid: String,
    auth_token: SecretString,
    from: String,
}

impl TwilioTransport {
    /// A transport for one account.
    pub fn new(base_url: url::Url, account_sid: &str, auth_token: SecretString, from: &str) -> anyhow::Result<Self> {
        let endpoint = base_url.join(&format!("2010-04-01/Accounts/{account_sid}/Messages.json"))?;
        Ok(Self { client: client()?, endpoint, account_sid: account_sid.to_owned(), auth_token, from: from.to_owned() })
    }
}

#[async_trait]
impl Transport for TwilioTransport {
    async fn send(&self, message: &OutboxMessage, content: &RenderedMessage) -> Result<(), TransportError> {
        let form = [("To", message.recipient.as_str()), ("From", self.from.as_str()), ("Body", content.text.as_str())];
        let request = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header("Idempotency-Key", message.id.as_str())
            .form(&form);
        outcome(request.send().await).await
    }
}

/// A JSON POST signed like common webhook schemes: header
/// `Gatehouse-Signature: t={unix seconds},v1={hex HMAC-SHA256(secret, "{t}.{body}")}`.
#[derive(Debug, Clone)]
pub struct WebhookTransport {
    client: reqwest::Client,
    url: url::Url,
    secret: SecretString,
}

impl WebhookTransport {
    /// A transport posting to `url`.
    pub fn new(url: url::Url, secret: SecretString) -> anyhow::Result<Self> {
        Ok(Self { client: client()?, url, secret })
    }
}

/// The signature header value for a body sent at `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(format!("{t}.").as_bytes());
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[async_trait]
impl Transport for WebhookTransport {
    async fn send(&self, message: &OutboxMessage, content: &RenderedMessage) -> Result<(), TransportError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "id": message.id,
            "tenant_id": message.tenant_id,
            "to": message.recipient,
            "body": content.text,
            "kind": message.kind.as_str(),
        }))
        .map_err(|e| TransportError::Permanent(e.to_string()))?;
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("Gatehouse-Signature", signature(self.secret.expose(), t, &body))
            .body(body);
        outcome(request.send().await).await
    }
}

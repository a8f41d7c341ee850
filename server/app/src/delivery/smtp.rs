//! Email through an SMTP relay with lettre: `smtp://` (plain, or STARTTLS with
//! `?tls=required`), `smtps://` (implicit TLS), credentials in the URL.

use async_trait::async_trait;
use gatehouse_core::messaging::{OutboxMessage, RenderedMessage};
use gatehouse_core::services::delivery::{Transport, TransportError};
use lettre::message::header::{ContentType, MessageId};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends through one relay.
#[derive(Debug, Clone)]
pub struct SmtpTransport {
    relay: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpTransport {
    /// A transport for `GATEHOUSE_SMTP_URL`.
    pub fn new(url: &url::Url, from: &str) -> anyhow::Result<Self> {
        let relay = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
            .map_err(|e| anyhow::anyhow!("GATEHOUSE_SMTP_URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from.parse().map_err(|e| anyhow::anyhow!("GATEHOUSE_MAIL_FROM: {e}"))?;
        Ok(Self { relay, from })
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, message: &OutboxMessage, content: &RenderedMessage) -> Result<(), TransportError> {
        let to: Mailbox =
            message.recipient.parse().map_err(|e| TransportError::Permanent(format!("bad recipient address: {e}")))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(content.subject.clone())
            // Stable per outbox row: a receiver can drop a duplicate of a resent message.
            .header(MessageId::from(format!("<{}@gatehouse>", message.id)));
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(content.text.clone());
        let email = match &content.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
            ),
            None => builder.singlepart(text),
        }
        .map_err(|e| TransportError::Permanent(format!("cannot build the message: {e}")))?;
        match self.relay.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(TransportError::Permanent(e.to_string())),
            Err(e) => Err(TransportError::Transient(e.to_string())),
        }
    }
}

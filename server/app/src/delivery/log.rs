//! Development transport: with no SMTP relay or SMS provider configured, messages are
//! written to the log (bodies, which carry codes and links, only at debug level) and
//! stay readable in the dev outbox.

use async_trait::async_trait;
use gatehouse_core::messaging::{OutboxMessage, RenderedMessage};
use gatehouse_core::services::delivery::{Transport, TransportError};

/// Logs instead of sending.
#[derive(Debug, Clone, Copy)]
pub struct LogTransport;

#[async_trait]
impl Transport for LogTransport {
    async fn send(&self, message: &OutboxMessage, content: &RenderedMessage) -> Result<(), TransportError> {
        tracing::info!(
            message_id = %message.id,
            tenant_id = %message.tenant_id,
            channel = message.channel.as_str(),
            kind = message.kind.as_str(),
            "message kept in the dev outbox (no relay configured)"
        );
        tracing::debug!(message_id = %message.id, subject = %content.subject, body = %content.text, "dev message");
        Ok(())
    }

    /// The dev outbox shows what was "sent", so the content stays.
    fn keeps_content(&self) -> bool {
        true
    }
}

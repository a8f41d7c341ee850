//! Transports that take messages out of the outbox: SMTP (lettre), SMS providers
//! (Twilio-compatible HTTP, signed webhook), and the log for development. The worker
//! loop runs [`gatehouse_core::services::delivery::Delivery`] on a timer.

pub mod log;
pub mod sms;
pub mod smtp;

use crate::config::{Config, SmsConfig};
use gatehouse_core::services::delivery::{Delivery, Transport};
use std::sync::Arc;

/// The email and SMS transports the configuration asks for.
pub fn transports(config: &Config) -> anyhow::Result<(Arc<dyn Transport>, Arc<dyn Transport>)> {
    let email: Arc<dyn Transport> = match &config.smtp_url {
        Some(url) => Arc::new(smtp::SmtpTransport::new(url, &config.mail_from)?),
        None => Arc::new(log::LogTransport),
    };
    let sms: Arc<dyn Transport> = match &config.sms {
        Some(SmsConfig::Twilio { base_url, account_sid, auth_token, from }) => {
            Arc::new(sms::TwilioTransport::new(base_url.clone(), account_sid, auth_token.clone(), from)?)
        }
        Some(SmsConfig::Webhook { url, secret }) => Arc::new(sms::WebhookTransport::new(url.clone(), secret.clone())?),
        None => Arc::new(log::LogTransport),
    };
    Ok((email, sms))
}

/// Sends due messages every `every`, and at once when `wake` says this replica queued
/// some, until aborted.
pub async fn run(delivery: Delivery, every: std::time::Duration, wake: Arc<tokio::sync::Notify>) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = wake.notified() => {}
        }
        if let Err(e) = delivery.run_once().await {
            tracing::warn!(error = %e, "message delivery round failed");
        }
    }
}

//! Message templates: built-in defaults in English and German, tenant overrides, the
//! choice of language, and rendering. HTML bodies are auto-escaped, so user data (a
//! name, an address) can never inject markup; subjects and text bodies are plain text.

use super::AuditLog;
use crate::access::{Capability, TenantAccess};
use crate::audit::RequestContext;
use crate::clock::Clock;
use crate::error::{FieldError, ServiceError};
use crate::messaging::{MessageKind, RenderedMessage, TemplateOverride};
use crate::store::Store;
use crate::tenant::Tenant;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use std::sync::Arc;

/// Languages with built-in templates; the first is the fallback.
pub const BUILT_IN_LOCALES: [&str; 2] = ["en", "de"];
/// Largest template part an operator may store.
const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// What a template can use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TemplateVars {
    /// The tenant's product name (branding display name, else the tenant name).
    pub product_name: String,
    /// Logo URL, if branded.
    pub logo_url: Option<String>,
    /// Main colour (`#rrggbb`).
    pub primary_color: String,
    /// The link to open, if the message carries one.
    pub link: Option<String>,
    /// The code to enter, if the message carries one.
    pub code: Option<String>,
    /// Minutes until the link or code expires.
    pub expires_minutes: Option<i64>,
    /// The recipient's address.
    pub email: Option<String>,
    /// The new address (email change).
    pub new_email: Option<String>,
    /// The organization (invitations).
    pub org_name: Option<String>,
}

impl TemplateVars {
    /// The branding part, filled from the tenant.
    pub fn for_tenant(tenant: &Tenant) -> Self {
        let branding = &tenant.settings.branding;
        Self {
            product_name: branding.display_name.clone().unwrap_or_else(|| tenant.name.clone()),
            logo_url: branding.logo_url.clone(),
            primary_color: branding.primary_color.clone().unwrap_or_else(|| "#1f4fd8".into()),
            ..Self::default()
        }
    }
}

/// The languages to try, best first: the user's own, then the `Accept-Language` ones
/// in order of preference. Only the primary subtag counts (`de-CH` → `de`).
pub fn preferred_languages(user_locale: Option<&str>, accept_language: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |tag: &str| {
        let lang = tag.split(['-', '_']).next().unwrap_or_default().trim().to_ascii_lowercase();
        if (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase()) && !out.contains(&lang) {
            out.push(lang);
        }
    };
    if let Some(locale) = user_locale {
        push(locale);
    }
    if let Some(header) = accept_language {
        let mut ranged: Vec<(f32, usize, &str)> = header
            .split(',')
            .take(16)
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let q =
                    pieces.find_map(|p| p.trim().strip_prefix("q=")).map_or(Some(1.0), |q| q.parse::<f32>().ok())?;
                (q > 0.0 && tag != "*").then_some((q, i, tag))
            })
            .collect();
        ranged.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, tag) in ranged {
            push(tag);
        }
    }
    out
}

/// A template's three parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    /// Subject.
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// Text body.
    pub text: String,
}

/// Chooses the template for `kind` among the tenant's overrides and the built-ins: the
/// first preferred language with an override or a built-in wins; English otherwise.
pub fn choose<'a>(
    kind: MessageKind,
    languages: &[String],
    overrides: &'a [TemplateOverride],
) -> (String, std::borrow::Cow<'a, TemplateOverride>) {
    let find = |lang: &str| overrides.iter().find(|o| o.kind == kind && o.locale == lang);
    for lang in languages {
        if let Some(o) = find(lang) {
            return (lang.clone(), std::borrow::Cow::Borrowed(o));
        }
        if let Some(builtin) = BUILT_IN_LOCALES.iter().find(|l| **l == lang.as_str()) {
            return ((*builtin).to_owned(), std::borrow::Cow::Owned(built_in(kind, builtin)));
        }
    }
    match find("en") {
        Some(o) => ("en".into(), std::borrow::Cow::Borrowed(o)),
        None => ("en".into(), std::borrow::Cow::Owned(built_in(kind, "en"))),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env
}

/// Renders a template with the variables.
pub fn render(template: &TemplateOverride, vars: &TemplateVars) -> Result<RenderedMessage, ServiceError> {
    let env = environment();
    let part = |name: &str, source: &str| {
        env.render_named_str(name, source, vars).map_err(|e| ServiceError::internal(format!("template {name}: {e}")))
    };
    let subject = part("subject.txt", &template.subject)?;
    let text = part("body.txt", &template.text)?;
    let html = if template.html.trim().is_empty() { None } else { Some(part("body.html", &template.html)?) };
    Ok(RenderedMessage { subject: subject.trim().replace(['\r', '\n'], " "), text, html })
}

/// Checks that each part parses and renders with sample variables, naming the bad part.
pub fn check(kind: MessageKind, source: &TemplateSource) -> Result<(), ServiceError> {
    let env = environment();
    let sample = TemplateVars {
        product_name: "Example".into(),
        link: Some("https://example.com/x".into()),
        code: Some("123456".into()),
        expires_minutes: Some(15),
        email: Some("user@example.com".into()),
        new_email: Some("new@example.com".into()),
        org_name: Some("Example Org".into()),
        ..TemplateVars::default()
    };
    let mut errors = Vec::new();
    for (field, name, text) in [
        ("subject", "subject.txt", &source.subject),
        ("html", "body.html", &source.html),
        ("text", "body.txt", &source.text),
    ] {
        if text.len() > MAX_TEMPLATE_BYTES {
            errors.push(FieldError::new(field, "must be at most 64 KiB"));
        } else if let Err(e) = env.render_named_str(name, text, &sample) {
            errors.push(FieldError::new(field, format!("is not a valid template: {e}")));
        }
    }
    if kind.channel() == crate::messaging::Channel::Email && source.subject.trim().is_empty() {
        errors.push(FieldError::new("subject", "must not be empty"));
    }
    if source.text.trim().is_empty() {
        errors.push(FieldError::new("text", "must not be empty"));
    }
    if errors.is_empty() { Ok(()) } else { Err(ServiceError::Validation(errors)) }
}

/// Checks a locale of an override: a 2-3 letter language code.
pub fn check_locale(locale: &str) -> Result<(), ServiceError> {
    if (2..=3).contains(&locale.len()) && locale.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(ServiceError::invalid("locale", "must be a lowercase language code such as en or de"))
    }
}

/// How long a replica may render from a tenant's overrides as read. The replica that
/// changes them forgets at once; others lag by at most this much (as tenants, ADR 11).
const OVERRIDES_TTL: std::time::Duration = std::time::Duration::from_secs(2);

type OverrideEntries =
    std::collections::HashMap<crate::ids::TenantId, (std::time::Instant, Arc<Vec<TemplateOverride>>)>;

/// Each tenant's template overrides, kept a moment in memory: every message needs them,
/// and they change rarely.
#[derive(Debug, Clone, Default)]
pub struct OverrideCache {
    entries: Arc<std::sync::Mutex<OverrideEntries>>,
}

impl OverrideCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, OverrideEntries> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tenant's overrides, from memory when read less than two seconds ago.
    pub async fn get(
        &self,
        store: &dyn Store,
        tenant_id: &crate::ids::TenantId,
    ) -> Result<Arc<Vec<TemplateOverride>>, ServiceError> {
        if let Some((at, overrides)) = self.lock().get(tenant_id)
            && at.elapsed() < OVERRIDES_TTL
        {
            return Ok(overrides.clone());
        }
        let overrides = Arc::new(store.list_templates(tenant_id).await?);
        let mut entries = self.lock();
        entries.retain(|_, (at, _)| at.elapsed() < OVERRIDES_TTL);
        entries.insert(tenant_id.clone(), (std::time::Instant::now(), overrides.clone()));
        Ok(overrides)
    }

    /// Forgets a tenant whose overrides changed.
    pub fn forget(&self, tenant_id: &crate::ids::TenantId) {
        self.lock().remove(tenant_id);
    }
}

/// The management of a tenant's template overrides.
#[derive(Debug, Clone)]
pub struct TemplateService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    cache: OverrideCache,
}

impl TemplateService {
    /// Wires the service; changes make `cache` forget the tenant.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, audit: AuditLog, cache: OverrideCache) -> Self {
        Self { store, clock, audit, cache }
    }

    /// The effective template of each kind and built-in language, overrides marked.
    pub async fn list(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
    ) -> Result<Vec<(TemplateOverride, bool)>, ServiceError> {
        access.require(Capability::Read)?;
        self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let overrides = self.store.list_templates(access.tenant_id()).await?;
        let mut out: Vec<(TemplateOverride, bool)> = overrides.iter().cloned().map(|o| (o, true)).collect();
        for kind in MessageKind::ALL {
            for lang in BUILT_IN_LOCALES {
                if !overrides.iter().any(|o| o.kind == kind && o.locale == lang) {
                    out.push((built_in(kind, lang), false));
                }
            }
        }
        out.sort_by(|a, b| (a.0.kind.as_str(), &a.0.locale).cmp(&(b.0.kind.as_str(), &b.0.locale)));
        self.audit.read(access.principal(), ctx, "template.list", Some(access.tenant_id()), None).await?;
        Ok(out)
    }

    /// Stores a tenant's own version of one template.
    pub async fn put(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        kind: MessageKind,
        locale: &str,
        source: TemplateSource,
    ) -> Result<TemplateOverride, ServiceError> {
        access.require(Capability::Write)?;
        check_locale(locale)?;
        check(kind, &source)?;
        let template = TemplateOverride {
            kind,
            locale: locale.to_owned(),
            subject: source.subject,
            html: source.html,
            text: source.text,
            updated_at: self.clock.now(),
        };
        let target = format!("{}/{locale}", kind.as_str());
        let event = self.audit.change(
            access.principal(),
            ctx,
            "template.put",
            Some(access.tenant_id()),
            Some(("template", &target)),
        );
        self.store
            .put_template(access.tenant_id(), &template, &event)
            .await
            .map_err(ServiceError::from_store("tenant"))?;
        self.cache.forget(access.tenant_id());
        Ok(template)
    }

    /// Returns to the built-in template.
    pub async fn delete(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        kind: MessageKind,
        locale: &str,
    ) -> Result<(), ServiceError> {
        access.require(Capability::Write)?;
        let target = format!("{}/{locale}", kind.as_str());
        let event = self.audit.change(
            access.principal(),
            ctx,
            "template.delete",
            Some(access.tenant_id()),
            Some(("template", &target)),
        );
        self.store
            .delete_template(access.tenant_id(), kind, locale, &event)
            .await
            .map_err(ServiceError::from_store("template"))?;
        self.cache.forget(access.tenant_id());
        Ok(())
    }
}

/// The built-in template of a kind in a built-in language (English for any other).
pub fn built_in(kind: MessageKind, lang: &str) -> TemplateOverride {
    let german = lang == "de";
    let (subject, intro, action, body_text) = copy(kind, german);
    let html = layout(intro, action, german);
    TemplateOverride {
        kind,
        locale: if german { "de" } else { "en" }.into(),
        subject: subject.into(),
        html,
        text: body_text.into(),
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

/// (subject, HTML intro, HTML action label, text body) of each message.
fn copy(kind: MessageKind, de: bool) -> (&'static str, &'static str, &'static str, &'static str) {
    use MessageKind as K;
    match (kind, de) {
        (K::VerifyEmail, false) => (
            "Confirm your email address for {{ product_name }}",
            "Please confirm that this is your email address.",
            "Confirm email address",
            "Please confirm your email address for {{ product_name }}:\n{{ link }}\n\nOr enter this code: {{ code }}\n\nThe link and code expire in {{ expires_minutes }} minutes. If you did not sign up, ignore this message.\n",
        ),
        (K::VerifyEmail, true) => (
            "Bestätigen Sie Ihre E-Mail-Adresse für {{ product_name }}",
            "Bitte bestätigen Sie, dass dies Ihre E-Mail-Adresse ist.",
            "E-Mail-Adresse bestätigen",
            "Bitte bestätigen Sie Ihre E-Mail-Adresse für {{ product_name }}:\n{{ link }}\n\nOder geben Sie diesen Code ein: {{ code }}\n\nLink und Code verfallen in {{ expires_minutes }} Minuten. Wenn Sie sich nicht registriert haben, ignorieren Sie diese Nachricht.\n",
        ),
        (K::PasswordReset, false) => (
            "Reset your {{ product_name }} password",
            "Someone asked to reset the password of your account. If it was you, choose a new password.",
            "Choose a new password",
            "Someone asked to reset your {{ product_name }} password. If it was you, choose a new one here:\n{{ link }}\n\nThe link expires in {{ expires_minutes }} minutes and works once. If it was not you, ignore this message; your password stays as it is.\n",
        ),
        (K::PasswordReset, true) => (
            "Ihr Passwort für {{ product_name }} zurücksetzen",
            "Jemand möchte das Passwort Ihres Kontos zurücksetzen. Wenn Sie das waren, wählen Sie ein neues Passwort.",
            "Neues Passwort wählen",
            "Jemand möchte Ihr Passwort für {{ product_name }} zurücksetzen. Wenn Sie das waren, wählen Sie hier ein neues:\n{{ link }}\n\nDer Link verfällt in {{ expires_minutes }} Minuten und gilt nur einmal. Wenn Sie es nicht waren, ignorieren Sie diese Nachricht; Ihr Passwort bleibt unverändert.\n",
        ),
        (K::PasswordResetDone, false) => (
            "Your {{ product_name }} password was changed",
            "The password of your account was just reset, and every session was signed out. If this was not you, contact support at once.",
            "",
            "The password of your {{ product_name }} account was just reset, and every session was signed out. If this was not you, contact support at once.\n",
        ),
        (K::PasswordResetDone, true) => (
            "Ihr Passwort für {{ product_name }} wurde geändert",
            "Das Passwort Ihres Kontos wurde soeben zurückgesetzt, alle Sitzungen wurden beendet. Wenn Sie das nicht waren, wenden Sie sich sofort an den Support.",
            "",
            "Das Passwort Ihres Kontos bei {{ product_name }} wurde soeben zurückgesetzt, alle Sitzungen wurden beendet. Wenn Sie das nicht waren, wenden Sie sich sofort an den Support.\n",
        ),
        (K::EmailChangeConfirm, false) => (
            "Confirm your new email address for {{ product_name }}",
            "Please confirm that this address should become the email address of your account.",
            "Confirm new address",
            "Please confirm {{ email }} as the new email address of your {{ product_name }} account:\n{{ link }}\n\nOr enter this code: {{ code }}\n\nThe link and code expire in {{ expires_minutes }} minutes.\n",
        ),
        (K::EmailChangeConfirm, true) => (
            "Bestätigen Sie Ihre neue E-Mail-Adresse für {{ product_name }}",
            "Bitte bestätigen Sie, dass diese Adresse die E-Mail-Adresse Ihres Kontos werden soll.",
            "Neue Adresse bestätigen",
            "Bitte bestätigen Sie {{ email }} als neue E-Mail-Adresse Ihres Kontos bei {{ product_name }}:\n{{ link }}\n\nOder geben Sie diesen Code ein: {{ code }}\n\nLink und Code verfallen in {{ expires_minutes }} Minuten.\n",
        ),
        (K::EmailChangeNotice, false) => (
            "The email address of your {{ product_name }} account was changed",
            "The email address of your account was changed to {{ new_email }}. If this was not you, undo the change; this also signs out every session.",
            "Undo the change",
            "The email address of your {{ product_name }} account was changed to {{ new_email }}.\nIf this was not you, undo the change here (it also signs out every session):\n{{ link }}\n\nThe link works for {{ expires_minutes }} minutes.\n",
        ),
        (K::EmailChangeNotice, true) => (
            "Die E-Mail-Adresse Ihres Kontos bei {{ product_name }} wurde geändert",
            "Die E-Mail-Adresse Ihres Kontos wurde in {{ new_email }} geändert. Wenn Sie das nicht waren, machen Sie die Änderung rückgängig; dabei werden alle Sitzungen beendet.",
            "Änderung rückgängig machen",
            "Die E-Mail-Adresse Ihres Kontos bei {{ product_name }} wurde in {{ new_email }} geändert.\nWenn Sie das nicht waren, machen Sie die Änderung hier rückgängig (dabei werden alle Sitzungen beendet):\n{{ link }}\n\nDer Link gilt {{ expires_minutes }} Minuten.\n",
        ),
        (K::MagicLink, false) => (
            "Sign in to {{ product_name }}",
            "Use this link to sign in. It works once.",
            "Sign in",
            "Sign in to {{ product_name }} with this link:\n{{ link }}\n\nIt expires in {{ expires_minutes }} minutes and works once. If you did not ask for it, ignore this message.\n",
        ),
        (K::MagicLink, true) => (
            "Bei {{ product_name }} anmelden",
            "Mit diesem Link melden Sie sich an. Er gilt nur einmal.",
            "Anmelden",
            "Melden Sie sich mit diesem Link bei {{ product_name }} an:\n{{ link }}\n\nEr verfällt in {{ expires_minutes }} Minuten und gilt nur einmal. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese Nachricht.\n",
        ),
        (K::EmailLoginCode, false) => (
            "{{ code }} is your {{ product_name }} sign-in code",
            "Your sign-in code is <strong>{{ code }}</strong>. It expires in {{ expires_minutes }} minutes.",
            "",
            "Your {{ product_name }} sign-in code is {{ code }}.\nIt expires in {{ expires_minutes }} minutes. If you did not ask for it, ignore this message.\n",
        ),
        (K::EmailLoginCode, true) => (
            "{{ code }} ist Ihr Anmeldecode für {{ product_name }}",
            "Ihr Anmeldecode lautet <strong>{{ code }}</strong>. Er verfällt in {{ expires_minutes }} Minuten.",
            "",
            "Ihr Anmeldecode für {{ product_name }} lautet {{ code }}.\nEr verfällt in {{ expires_minutes }} Minuten. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese Nachricht.\n",
        ),
        (K::MfaEnabled, false) => (
            "Two-step sign-in is on for your {{ product_name }} account",
            "An authenticator app now protects your account: sign-ins ask for its code. If this was not you, contact support at once.",
            "",
            "An authenticator app now protects your {{ product_name }} account: sign-ins ask for its code.\nIf this was not you, contact support at once.\n",
        ),
        (K::MfaEnabled, true) => (
            "Die Anmeldung in zwei Schritten ist für Ihr Konto bei {{ product_name }} aktiv",
            "Eine Authenticator-App schützt jetzt Ihr Konto: Anmeldungen fragen nach ihrem Code. Wenn Sie das nicht waren, wenden Sie sich sofort an den Support.",
            "",
            "Eine Authenticator-App schützt jetzt Ihr Konto bei {{ product_name }}: Anmeldungen fragen nach ihrem Code.\nWenn Sie das nicht waren, wenden Sie sich sofort an den Support.\n",
        ),
        (K::MfaDisabled, false) => (
            "Two-step sign-in was turned off for your {{ product_name }} account",
            "The authenticator app no longer protects your account. If this was not you, reset your password and contact support at once.",
            "",
            "The authenticator app no longer protects your {{ product_name }} account.\nIf this was not you, reset your password and contact support at once.\n",
        ),
        (K::MfaDisabled, true) => (
            "Die Anmeldung in zwei Schritten wurde für Ihr Konto bei {{ product_name }} abgeschaltet",
            "Die Authenticator-App schützt Ihr Konto nicht mehr. Wenn Sie das nicht waren, setzen Sie Ihr Passwort zurück und wenden Sie sich sofort an den Support.",
            "",
            "Die Authenticator-App schützt Ihr Konto bei {{ product_name }} nicht mehr.\nWenn Sie das nicht waren, setzen Sie Ihr Passwort zurück und wenden Sie sich sofort an den Support.\n",
        ),
        (K::RecoveryCodeUsed, false) => (
            "A recovery code of your {{ product_name }} account was used",
            "One of your recovery codes was just used on your account. If this was not you, reset your password and contact support at once.",
            "",
            "One of your recovery codes was just used on your {{ product_name }} account.\nIf this was not you, reset your password and contact support at once.\n",
        ),
        (K::RecoveryCodeUsed, true) => (
            "Ein Wiederherstellungscode Ihres Kontos bei {{ product_name }} wurde benutzt",
            "Soeben wurde einer Ihrer Wiederherstellungscodes für Ihr Konto benutzt. Wenn Sie das nicht waren, setzen Sie Ihr Passwort zurück und wenden Sie sich sofort an den Support.",
            "",
            "Soeben wurde einer Ihrer Wiederherstellungscodes für Ihr Konto bei {{ product_name }} benutzt.\nWenn Sie das nicht waren, setzen Sie Ihr Passwort zurück und wenden Sie sich sofort an den Support.\n",
        ),
        (K::Invitation, false) => (
            "You are invited to join {{ org_name }} on {{ product_name }}",
            "You are invited to join <strong>{{ org_name }}</strong>. <a href=\"{{ link }}\">Accept the invitation</a>; it expires in {{ expires_minutes // 1440 }} days.",
            "",
            "You are invited to join {{ org_name }} on {{ product_name }}.\nAccept the invitation: {{ link }}\nIt expires in {{ expires_minutes // 1440 }} days. If you did not expect it, ignore this message.\n",
        ),
        (K::Invitation, true) => (
            "Einladung zu {{ org_name }} bei {{ product_name }}",
            "Sie sind eingeladen, <strong>{{ org_name }}</strong> beizutreten. <a href=\"{{ link }}\">Einladung annehmen</a>; sie verfällt in {{ expires_minutes // 1440 }} Tagen.",
            "",
            "Sie sind eingeladen, {{ org_name }} bei {{ product_name }} beizutreten.\nEinladung annehmen: {{ link }}\nSie verfällt in {{ expires_minutes // 1440 }} Tagen. Wenn Sie sie nicht erwartet haben, ignorieren Sie diese Nachricht.\n",
        ),
        (K::PasskeyAdded, false) => (
            "A passkey was added to your {{ product_name }} account",
            "A new passkey can now sign in to your account. If this was not you, remove it and contact support at once.",
            "",
            "A new passkey can now sign in to your {{ product_name }} account.\nIf this was not you, remove it and contact support at once.\n",
        ),
        (K::PasskeyAdded, true) => (
            "Ein Passkey wurde Ihrem Konto bei {{ product_name }} hinzugefügt",
            "Ein neuer Passkey kann sich jetzt bei Ihrem Konto anmelden. Wenn Sie das nicht waren, entfernen Sie ihn und wenden Sie sich sofort an den Support.",
            "",
            "Ein neuer Passkey kann sich jetzt bei Ihrem Konto bei {{ product_name }} anmelden.\nWenn Sie das nicht waren, entfernen Sie ihn und wenden Sie sich sofort an den Support.\n",
        ),
        (K::PasskeyRemoved, false) => (
            "A passkey was removed from your {{ product_name }} account",
            "A passkey can no longer sign in to your account. If this was not you, reset your password and contact support at once.",
            "",
            "A passkey can no longer sign in to your {{ product_name }} account.\nIf this was not you, reset your password and contact support at once.\n",
        ),
        (K::PasskeyRemoved, true) => (
            "Ein Passkey wurde aus Ihrem Konto bei {{ product_name }} entfernt",
            "Ein Passkey kann sich nicht mehr bei Ihrem Konto anmelden. Wenn Sie das nicht waren, setzen Sie Ihr Passwort zurück und wenden Sie sich sofort an den Support.",
            "",
            "Ein Passkey kann sich nicht mehr bei Ihrem Konto bei {{ product_name }} anmelden.\nWenn Sie das nicht waren, setzen Sie Ihr Passwort zurück und wenden Sie sich sofort an den Support.\n",
        ),
        (K::RecoveryCodesRegenerated, false) => (
            "New recovery codes for your {{ product_name }} account",
            "Your recovery codes were replaced; the old ones no longer work. If this was not you, contact support at once.",
            "",
            "The recovery codes of your {{ product_name }} account were replaced; the old ones no longer work.\nIf this was not you, contact support at once.\n",
        ),
        (K::RecoveryCodesRegenerated, true) => (
            "Neue Wiederherstellungscodes für Ihr Konto bei {{ product_name }}",
            "Ihre Wiederherstellungscodes wurden ersetzt; die alten gelten nicht mehr. Wenn Sie das nicht waren, wenden Sie sich sofort an den Support.",
            "",
            "Die Wiederherstellungscodes Ihres Kontos bei {{ product_name }} wurden ersetzt; die alten gelten nicht mehr.\nWenn Sie das nicht waren, wenden Sie sich sofort an den Support.\n",
        ),
        (K::PhoneVerify, false) => ("", "", "", "{{ code }} is your {{ product_name }} verification code."),
        (K::PhoneVerify, true) => ("", "", "", "{{ code }} ist Ihr Bestätigungscode für {{ product_name }}."),
        (K::SmsLoginCode, false) => ("", "", "", "{{ code }} is your {{ product_name }} sign-in code."),
        (K::SmsLoginCode, true) => ("", "", "", "{{ code }} ist Ihr Anmeldecode für {{ product_name }}."),
    }
}

/// The HTML frame shared by the built-in emails (empty for SMS).
fn layout(intro: &str, action: &str, de: bool) -> String {
    if intro.is_empty() {
        return String::new();
    }
    let button = if action.is_empty() {
        String::new()
    } else {
        format!(
            "<p><a href=\"{{{{ link }}}}\" style=\"display:inline-block;padding:12px 20px;border-radius:6px;\
             background:{{{{ primary_color }}}};color:#ffffff;text-decoration:none\">{action}</a></p>\n\
             <p style=\"font-size:13px;color:#555\">{}<br>{{{{ link }}}}</p>\n",
            if de { "Oder öffnen Sie diese Adresse:" } else { "Or open this address:" }
        )
    };
    let code = if action.is_empty() {
        String::new()
    } else {
        "{% if code %}<p>Code: <strong style=\"font-size:20px;letter-spacing:3px\">{{ code }}</strong></p>{% endif %}\n"
            .to_owned()
    };
    format!(
        "<!doctype html>\n<html><body style=\"font-family:system-ui,sans-serif;max-width:560px;margin:auto;padding:24px\">\n\
         {{% if logo_url %}}<img src=\"{{{{ logo_url }}}}\" alt=\"{{{{ product_name }}}}\" height=\"40\">{{% endif %}}\n\
         <h2>{{{{ product_name }}}}</h2>\n<p>{intro}</p>\n{button}{code}\
         {{% if expires_minutes %}}<p style=\"font-size:13px;color:#555\">{} {{{{ expires_minutes }}}} {}</p>{{% endif %}}\n\
         </body></html>\n",
        if de { "Gültig für" } else { "Valid for" },
        if de { "Minuten." } else { "minutes." }
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            product_name: "Acme <b>".into(),
            link: Some("https://id.example.com/t/acme/x?token=a&b=c".into()),
            code: Some("042917".into()),
            expires_minutes: Some(15),
            email: Some("ann@example.com".into()),
            new_email: Some("<script>@example.com".into()),
            primary_color: "#112233".into(),
            ..TemplateVars::default()
        }
    }

    #[test]
    fn every_built_in_renders_in_both_languages() {
        for kind in MessageKind::ALL {
            for lang in BUILT_IN_LOCALES {
                let t = built_in(kind, lang);
                let m = render(&t, &vars()).unwrap();
                let carries = m.text.contains("042917") || m.text.contains("https://id.example.com");
                let notice = matches!(
                    kind,
                    MessageKind::PasswordResetDone
                        | MessageKind::MfaEnabled
                        | MessageKind::MfaDisabled
                        | MessageKind::RecoveryCodeUsed
                        | MessageKind::RecoveryCodesRegenerated
                        | MessageKind::PasskeyAdded
                        | MessageKind::PasskeyRemoved
                );
                assert!(carries || notice, "{kind:?} {lang}");
                assert!(m.text.contains("Acme <b>"), "{kind:?} {lang}");
                assert_eq!(m.html.is_some(), kind.channel() == crate::messaging::Channel::Email);
                check(kind, &TemplateSource { subject: t.subject, html: t.html, text: t.text }).unwrap();
            }
        }
        let de = render(&built_in(MessageKind::PasswordReset, "de"), &vars()).unwrap();
        assert!(de.subject.starts_with("Ihr Passwort"));
        let en = render(&built_in(MessageKind::PasswordReset, "en"), &vars()).unwrap();
        assert!(en.subject.starts_with("Reset your"));
    }

    #[test]
    fn html_escapes_user_data_and_text_keeps_it() {
        let m = render(&built_in(MessageKind::EmailChangeNotice, "en"), &vars()).unwrap();
        let html = m.html.unwrap();
        assert!(html.contains("&lt;script&gt;@example.com"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(html.contains("Acme &lt;b&gt;"));
        assert!(html.contains("token=a&amp;b=c"));
        assert!(m.text.contains("<script>@example.com"));
    }

    #[test]
    fn languages_come_from_the_user_then_accept_language_by_quality() {
        assert_eq!(preferred_languages(Some("de-CH"), Some("fr;q=0.5, en")), ["de", "en", "fr"]);
        assert_eq!(preferred_languages(None, Some("fr-FR, de;q=0.9, *;q=0.1")), ["fr", "de"]);
        assert_eq!(preferred_languages(None, Some("garbage;q=x, 12, de;q=0")), Vec::<String>::new());
        let (lang, t) = choose(MessageKind::MagicLink, &["fr".into(), "de".into()], &[]);
        assert_eq!((lang.as_str(), t.locale.as_str()), ("de", "de"));
        let (lang, _) = choose(MessageKind::MagicLink, &["fr".into()], &[]);
        assert_eq!(lang, "en");
        let custom = TemplateOverride { locale: "fr".into(), ..built_in(MessageKind::MagicLink, "en") };
        let (lang, t) = choose(MessageKind::MagicLink, &["fr".into(), "de".into()], std::slice::from_ref(&custom));
        assert_eq!((lang.as_str(), t.into_owned()), ("fr", custom));
    }

    #[test]
    fn broken_templates_are_refused_with_the_part_named() {
        let bad = TemplateSource { subject: "Hi {{".into(), html: "<p>{% if %}</p>".into(), text: "ok".into() };
        let ServiceError::Validation(errors) = check(MessageKind::MagicLink, &bad).unwrap_err() else { panic!() };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["subject", "html"]);
        assert!(check_locale("EN").is_err() && check_locale("de").is_ok());
    }
}

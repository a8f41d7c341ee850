//! Use cases shared by every interface (REST today, GraphQL and jobs later). Each
//! service holds its dependencies explicitly and takes capability handles from
//! [`crate::access`], never bare tenant ids.

pub mod admin_tokens;
pub mod audit_log;
pub mod auth;
pub mod authenticate;
pub mod delivery;
pub mod keys;
pub mod messenger;
pub mod mfa;
pub mod operators;
pub mod org_domains;
pub mod org_invitations;
pub mod orgs;
pub mod outbox;
pub mod passkeys;
pub mod passwordless;
pub mod qr_login;
pub mod retention;
pub mod secret_keys;
pub mod templates;
pub mod tenants;
pub mod users;
pub mod verification;

pub use admin_tokens::AdminTokenService;
pub use audit_log::AuditLog;
pub use auth::AuthService;
pub use authenticate::Authenticator;
pub use keys::KeyService;
pub use messenger::Messenger;
pub use mfa::MfaService;
pub use operators::OperatorService;
pub use orgs::OrgService;
pub use outbox::OutboxService;
pub use passkeys::PasskeyService;
pub use passwordless::PasswordlessService;
pub use qr_login::QrLoginService;
pub use retention::Retention;
pub use secret_keys::SecretKeyService;
pub use templates::TemplateService;
pub use tenants::TenantService;
pub use users::UserService;
pub use verification::VerificationService;

use crate::clock::Clock;
use crate::store::Store;
use std::sync::Arc;

/// Applies a redemption (see [`crate::store::MessagingStore::redeem_one_time`]); `gone` is
/// the answer when its secret was used or expired meanwhile, which is how all but one of
/// parallel redemptions end.
pub(crate) async fn redeem(
    store: &dyn Store,
    tenant_id: &crate::ids::TenantId,
    redemption: &crate::messaging::Redemption<'_>,
    gone: crate::error::ServiceError,
) -> Result<(), crate::error::ServiceError> {
    match store.redeem_one_time(tenant_id, redemption).await {
        Ok(()) => Ok(()),
        Err(crate::store::StoreError::NotFound) => Err(gone),
        Err(e) => Err(e.into()),
    }
}

/// Every service, wired to one store and clock.
#[derive(Debug, Clone)]
pub struct Services {
    /// Tenants.
    pub tenants: TenantService,
    /// Tenant secret keys.
    pub secret_keys: SecretKeyService,
    /// Operator API tokens.
    pub admin_tokens: AdminTokenService,
    /// The audit log.
    pub audit: AuditLog,
    /// Management-API authentication.
    pub authenticator: Authenticator,
    /// Users.
    pub users: UserService,
    /// End-user authentication.
    pub auth: AuthService,
    /// Signing keys.
    pub keys: KeyService,
    /// Composes and opens messages.
    pub messenger: Messenger,
    /// Tenant message templates.
    pub templates: TemplateService,
    /// Email verification, password reset, email change, phone numbers.
    pub verification: VerificationService,
    /// Magic links and one-time sign-in codes.
    pub passwordless: PasswordlessService,
    /// Operators' view of the outbox.
    pub outbox: OutboxService,
    /// Second factors.
    pub mfa: MfaService,
    /// Passkeys.
    pub passkeys: PasskeyService,
    /// Organizations, members, roles, invitations.
    pub orgs: OrgService,
    /// Operator accounts and their sign-in.
    pub operators: OperatorService,
    /// Cross-device sign-in by QR code.
    pub qr_login: QrLoginService,
}

/// What the services are built from.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Also record read-only management calls in the audit log.
    pub audit_reads: bool,
    /// The break-glass operator token, if configured.
    pub break_glass_token: Option<crate::secret::SecretString>,
    /// Password hashing.
    pub password_hasher: crate::password::PasswordHasher,
    /// Encrypts secrets at rest (the master key).
    pub sealer: Arc<crate::signing::Sealer>,
    /// `GATEHOUSE_PUBLIC_URL`.
    pub public_url: String,
    /// TXT lookups for domain verification.
    pub resolver: Arc<dyn crate::dns::TxtResolver>,
}

impl Services {
    /// Wires every service.
    pub fn new(
        store: Arc<dyn Store>,
        ephemeral: Arc<dyn crate::ephemeral::EphemeralStore>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Self {
        let audit = AuditLog::new(store.clone(), clock.clone(), config.audit_reads);
        let keys = KeyService::new(store.clone(), clock.clone(), audit.clone(), config.sealer.clone());
        let overrides = templates::OverrideCache::default();
        let messenger = Messenger::new(store.clone(), config.sealer.clone(), &config.public_url, overrides.clone());
        let sealer = config.sealer.clone();
        let public_url = config.public_url.clone();
        let tenant_cache = tenants::TenantCache::default();
        let auth = AuthService::new(auth::AuthDeps {
            store: store.clone(),
            ephemeral: ephemeral.clone(),
            clock: clock.clone(),
            audit: audit.clone(),
            hasher: config.password_hasher.clone(),
            keys: keys.clone(),
            sealer: config.sealer,
            public_url: config.public_url,
            messenger: messenger.clone(),
            tenants: tenant_cache.clone(),
        });
        let verification = VerificationService::new(
            store.clone(),
            clock.clone(),
            auth.clone(),
            messenger.clone(),
            config.password_hasher.clone(),
        );
        let passwordless = PasswordlessService::new(store.clone(), clock.clone(), auth.clone(), messenger.clone());
        let qr_login = QrLoginService::new(store.clone(), clock.clone(), auth.clone(), &public_url);
        let operator_ephemeral = ephemeral.clone();
        let passkeys = PasskeyService::new(
            store.clone(),
            ephemeral,
            clock.clone(),
            auth.clone(),
            messenger.clone(),
            sealer.clone(),
            &public_url,
        );
        let mfa = MfaService::new(
            store.clone(),
            clock.clone(),
            auth.clone(),
            sealer.clone(),
            messenger.clone(),
            passkeys.clone(),
        );
        Self {
            templates: TemplateService::new(store.clone(), clock.clone(), audit.clone(), overrides),
            outbox: OutboxService::new(store.clone(), audit.clone(), messenger.clone()),
            verification,
            passwordless,
            mfa,
            orgs: OrgService::new(
                store.clone(),
                clock.clone(),
                auth.clone(),
                messenger.clone(),
                config.password_hasher.clone(),
                config.resolver.clone(),
            ),
            operators: OperatorService::new(
                store.clone(),
                operator_ephemeral,
                clock.clone(),
                audit.clone(),
                config.password_hasher.clone(),
                sealer.clone(),
            ),
            passkeys,
            qr_login,
            messenger,
            auth,
            keys,
            tenants: TenantService::new(store.clone(), clock.clone(), audit.clone(), tenant_cache),
            secret_keys: SecretKeyService::new(store.clone(), clock.clone(), audit.clone()),
            admin_tokens: AdminTokenService::new(store.clone(), clock.clone(), audit.clone()),
            users: UserService::new(store.clone(), clock.clone(), audit.clone(), config.password_hasher),
            authenticator: Authenticator::new(store, clock, config.break_glass_token),
            audit,
        }
    }
}

//! Configuration from `GATEHOUSE_*` environment variables and an optional TOML file
//! (`GATEHOUSE_CONFIG`), validated once at start. Environment wins over the file.
//! A bad value fails with one line naming the variable.

use base64::Engine;
use gatehouse_core::secret::SecretString;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration value that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The variable, e.g. `GATEHOUSE_LISTEN`.
    pub var: String,
    /// What is wrong.
    pub message: String,
}

fn err(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { var: var.to_owned(), message: message.into() }
}

/// Which database, parsed from `GATEHOUSE_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (created if missing).
    Sqlite {
        /// The sqlx URL.
        url: String,
        /// The database file.
        path: PathBuf,
    },
    /// PostgreSQL.
    Postgres {
        /// The connection URL.
        url: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The 32-byte key that encrypts secrets at rest.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(pub [u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let bytes = engines
            .iter()
            .find_map(|e| e.decode(text).ok())
            .ok_or("must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "must decode to exactly 32 bytes")?;
        Ok(Self(key))
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        Self(key)
    }

    /// Base64 text of the key.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// Given in `GATEHOUSE_MASTER_KEY`.
    Given(MasterKey),
    /// Kept in a file beside the SQLite database, generated on first start.
    File(PathBuf),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database.
    pub database: Database,
    /// Redis URL(s), comma-separated for a cluster; `None` for the in-process store.
    pub redis_url: Option<String>,
    /// Prefix for every Redis key.
    pub redis_prefix: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// External base URL, without a trailing slash.
    pub public_url: url::Url,
    /// Master key.
    pub master_key: MasterKeySource,
    /// Break-glass operator token.
    pub admin_token: Option<SecretString>,
    /// SMTP relay.
    pub smtp_url: Option<url::Url>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`GATEHOUSE_LOG`, tracing-subscriber syntax).
    pub log_filter: String,
    /// Also audit read-only management calls.
    pub audit_reads: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Database pool size.
    pub database_max_connections: u32,
    /// Argon2id cost for new password hashes.
    pub argon2: gatehouse_core::password::Argon2Cost,
    /// How many steps below request handling password hashes are scheduled (0–19).
    pub argon2_nice: i32,
    /// Reverse proxies whose `X-Forwarded-For` is believed; empty: the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How often the scheduled key-rotation job looks for due tenants.
    pub key_rotation_check: std::time::Duration,
    /// The `From` of every email.
    pub mail_from: String,
    /// Where SMS go; `None`: only to the log and the dev outbox.
    pub sms: Option<SmsConfig>,
    /// How often the delivery worker looks for due messages (it is also woken at once
    /// when this replica queues one).
    pub delivery_poll: std::time::Duration,
    /// The name server for domain-verification lookups; `None`: the system's.
    pub dns_resolver: Option<std::net::SocketAddr>,
}

/// The SMS provider.
#[derive(Debug, Clone)]
pub enum SmsConfig {
    /// Twilio's Messages API (or anything that speaks it).
    Twilio {
        /// API base URL (`https://api.twilio.com` unless testing).
        base_url: url::Url,
        /// Account SID.
        account_sid: String,
        /// Auth token.
        auth_token: SecretString,
        /// Sender number or messaging service.
        from: String,
    },
    /// A JSON POST to the tenant operator's endpoint, signed with HMAC-SHA256.
    Webhook {
        /// Endpoint.
        url: url::Url,
        /// Signing secret.
        secret: SecretString,
    },
}

/// Password hashes run this many nice steps below request handling by default (ADR 17).
pub const DEFAULT_ARGON2_NICE: u32 = 10;

/// Every variable, its TOML key being the name without the prefix, in lowercase.
pub const VARIABLES: &[&str] = &[
    "GATEHOUSE_DATABASE_URL",
    "GATEHOUSE_REDIS_URL",
    "GATEHOUSE_REDIS_PREFIX",
    "GATEHOUSE_LISTEN",
    "GATEHOUSE_PUBLIC_URL",
    "GATEHOUSE_MASTER_KEY",
    "GATEHOUSE_ADMIN_TOKEN",
    "GATEHOUSE_SMTP_URL",
    "GATEHOUSE_LOG_FORMAT",
    "GATEHOUSE_LOG",
    "GATEHOUSE_AUDIT_READS",
    "GATEHOUSE_MAX_BODY_BYTES",
    "GATEHOUSE_DATABASE_MAX_CONNECTIONS",
    "GATEHOUSE_ARGON2_MEMORY_KIB",
    "GATEHOUSE_ARGON2_ITERATIONS",
    "GATEHOUSE_ARGON2_PARALLELISM",
    "GATEHOUSE_ARGON2_NICE",
    "GATEHOUSE_TRUSTED_PROXIES",
    "GATEHOUSE_KEY_ROTATION_CHECK_SECONDS",
    "GATEHOUSE_MAIL_FROM",
    "GATEHOUSE_SMS_PROVIDER",
    "GATEHOUSE_TWILIO_BASE_URL",
    "GATEHOUSE_TWILIO_ACCOUNT_SID",
    "GATEHOUSE_TWILIO_AUTH_TOKEN",
    "GATEHOUSE_TWILIO_FROM",
    "GATEHOUSE_SMS_WEBHOOK_URL",
    "GATEHOUSE_SMS_WEBHOOK_SECRET",
    "GATEHOUSE_DELIVERY_POLL_MS",
    "GATEHOUSE_DNS_RESOLVER",
];

impl Config {
    /// Reads the process environment (and the file it names).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads the given variables (and the file `GATEHOUSE_CONFIG` names).
    pub fn from_vars(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut values = match env.get("GATEHOUSE_CONFIG").filter(|p| !p.is_empty()) {
            Some(path) => read_file(Path::new(path))?,
            None => HashMap::new(),
        };
        for var in VARIABLES {
            if let Some(v) = env.get(*var) {
                values.insert((*var).to_owned(), v.clone());
            }
        }
        Self::from_values(&values)
    }

    fn from_values(v: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |var: &str| v.get(var).map(|s| s.trim()).filter(|s| !s.is_empty());

        let database = parse_database(get("GATEHOUSE_DATABASE_URL").unwrap_or("sqlite://gatehouse.db"))?;
        let redis_url = get("GATEHOUSE_REDIS_URL").map(str::to_owned);
        if let Some(urls) = &redis_url {
            for u in urls.split(',').map(str::trim) {
                let ok = url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "redis" | "rediss"));
                if !ok {
                    return Err(err("GATEHOUSE_REDIS_URL", format!("{u:?} is not a redis:// or rediss:// URL")));
                }
            }
        }
        let listen_text = get("GATEHOUSE_LISTEN").unwrap_or("127.0.0.1:8080");
        let listen = listen_text.parse().map_err(|_| {
            err("GATEHOUSE_LISTEN", format!("{listen_text:?} is not an address such as 127.0.0.1:8080"))
        })?;
        let public_url = parse_public_url(get("GATEHOUSE_PUBLIC_URL").unwrap_or("http://127.0.0.1:8080"))?;
        let master_key = match (get("GATEHOUSE_MASTER_KEY"), &database) {
            (Some(text), _) => {
                MasterKeySource::Given(MasterKey::parse(text).map_err(|m| err("GATEHOUSE_MASTER_KEY", m))?)
            }
            (None, Database::Sqlite { path, .. }) => {
                let mut file = path.clone().into_os_string();
                file.push(".key");
                MasterKeySource::File(file.into())
            }
            (None, Database::Postgres { .. }) => {
                return Err(err(
                    "GATEHOUSE_MASTER_KEY",
                    "required with a postgres database (base64 of 32 random bytes)",
                ));
            }
        };
        let admin_token = match get("GATEHOUSE_ADMIN_TOKEN") {
            Some(t) if !t.starts_with("gh_admin_") || t.len() < 41 => {
                return Err(err(
                    "GATEHOUSE_ADMIN_TOKEN",
                    "must start with gh_admin_ and carry at least 32 random characters",
                ));
            }
            other => other.map(SecretString::new),
        };
        let smtp_url = get("GATEHOUSE_SMTP_URL")
            .map(|u| {
                url::Url::parse(u)
                    .ok()
                    .filter(|p| matches!(p.scheme(), "smtp" | "smtps") && p.host_str().is_some())
                    .ok_or_else(|| err("GATEHOUSE_SMTP_URL", "must be smtp://host[:port] or smtps://host[:port]"))
            })
            .transpose()?;
        let log_format = match get("GATEHOUSE_LOG_FORMAT").unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(err("GATEHOUSE_LOG_FORMAT", format!("{other:?} is not text or json")));
            }
        };
        let audit_reads = parse_bool(get("GATEHOUSE_AUDIT_READS"), true, "GATEHOUSE_AUDIT_READS")?;
        let max_body_bytes =
            parse_number(get("GATEHOUSE_MAX_BODY_BYTES"), 64 * 1024, 1024, 16 << 20, "GATEHOUSE_MAX_BODY_BYTES")?;
        let database_max_connections =
            parse_number(get("GATEHOUSE_DATABASE_MAX_CONNECTIONS"), 10, 1, 1000, "GATEHOUSE_DATABASE_MAX_CONNECTIONS")?;
        let default_cost = gatehouse_core::password::Argon2Cost::default();
        let number = |var: &str, default: u32, min: usize, max: usize| {
            parse_number(get(var), default as usize, min, max, var).map(|n| u32::try_from(n).unwrap_or(default))
        };
        let argon2 = gatehouse_core::password::Argon2Cost {
            memory_kib: number("GATEHOUSE_ARGON2_MEMORY_KIB", default_cost.memory_kib, 8 * 1024, 4 * 1024 * 1024)?,
            iterations: number("GATEHOUSE_ARGON2_ITERATIONS", default_cost.iterations, 1, 16)?,
            parallelism: number("GATEHOUSE_ARGON2_PARALLELISM", default_cost.parallelism, 1, 16)?,
        };
        let argon2_nice = i32::try_from(number("GATEHOUSE_ARGON2_NICE", DEFAULT_ARGON2_NICE, 0, 19)?).unwrap_or(0);
        let trusted_proxies = get("GATEHOUSE_TRUSTED_PROXIES")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.parse::<ipnet::IpNet>()
                            .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| {
                                err("GATEHOUSE_TRUSTED_PROXIES", format!("{p:?} is not an IP address or CIDR range"))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let key_rotation_check = std::time::Duration::from_secs(parse_number(
            get("GATEHOUSE_KEY_ROTATION_CHECK_SECONDS"),
            3600,
            1,
            86_400,
            "GATEHOUSE_KEY_ROTATION_CHECK_SECONDS",
        )? as u64);
        let mail_from = get("GATEHOUSE_MAIL_FROM").map_or_else(
            || format!("no-reply@{}", public_url.host_str().filter(|h| h.contains('.')).unwrap_or("gatehouse.invalid")),
            str::to_owned,
        );
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(
                "GATEHOUSE_MAIL_FROM",
                format!("{mail_from:?} is not a mailbox such as Acme <id@acme.com>"),
            ));
        }
        let sms = parse_sms(&get)?;
        let delivery_poll = std::time::Duration::from_millis(parse_number(
            get("GATEHOUSE_DELIVERY_POLL_MS"),
            1000,
            10,
            60_000,
            "GATEHOUSE_DELIVERY_POLL_MS",
        )? as u64);
        let dns_resolver = get("GATEHOUSE_DNS_RESOLVER")
            .map(|v| {
                v.parse::<std::net::SocketAddr>()
                    .map_err(|_| err("GATEHOUSE_DNS_RESOLVER", format!("{v:?} is not an address such as 127.0.0.1:53")))
            })
            .transpose()?;
        Ok(Self {
            dns_resolver,
            mail_from,
            sms,
            delivery_poll,
            key_rotation_check,
            trusted_proxies,
            argon2,
            argon2_nice,
            database,
            redis_url,
            redis_prefix: get("GATEHOUSE_REDIS_PREFIX").unwrap_or("gh:").to_owned(),
            listen,
            public_url,
            master_key,
            admin_token,
            smtp_url,
            log_format,
            log_filter: get("GATEHOUSE_LOG").unwrap_or("info").to_owned(),
            audit_reads,
            max_body_bytes,
            database_max_connections: u32::try_from(database_max_connections).unwrap_or(10),
        })
    }
}

fn parse_sms<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<SmsConfig>, ConfigError> {
    let required = |var: &str| get(var).ok_or_else(|| err(var, "is required by GATEHOUSE_SMS_PROVIDER"));
    let url = |var: &str, value: &str| {
        url::Url::parse(value)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| err(var, "must be an http(s) URL"))
    };
    match get("GATEHOUSE_SMS_PROVIDER") {
        None => Ok(None),
        Some("twilio") => Ok(Some(SmsConfig::Twilio {
            base_url: url(
                "GATEHOUSE_TWILIO_BASE_URL",
                get("GATEHOUSE_TWILIO_BASE_URL").unwrap_or("https://api.twilio.com"),
            )?,
            account_sid: required("GATEHOUSE_TWILIO_ACCOUNT_SID")?.to_owned(),
            auth_token: SecretString::new(required("GATEHOUSE_TWILIO_AUTH_TOKEN")?),
            from: required("GATEHOUSE_TWILIO_FROM")?.to_owned(),
        })),
        Some("webhook") => Ok(Some(SmsConfig::Webhook {
            url: url("GATEHOUSE_SMS_WEBHOOK_URL", required("GATEHOUSE_SMS_WEBHOOK_URL")?)?,
            secret: SecretString::new(required("GATEHOUSE_SMS_WEBHOOK_SECRET")?),
        })),
        Some(other) => Err(err("GATEHOUSE_SMS_PROVIDER", format!("{other:?} is not twilio or webhook"))),
    }
}

fn read_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("GATEHOUSE_CONFIG", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err("GATEHOUSE_CONFIG", format!("{}: {}", path.display(), e.message())))?;
    let mut out = HashMap::new();
    for (key, value) in table {
        let var = format!("GATEHOUSE_{}", key.to_ascii_uppercase());
        if !VARIABLES.contains(&var.as_str()) {
            return Err(err("GATEHOUSE_CONFIG", format!("{}: unknown setting {key:?}", path.display())));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(err(&var, format!("{}: {key} must be a string, integer or boolean", path.display())));
            }
        };
        out.insert(var, text);
    }
    Ok(out)
}

fn parse_database(url: &str) -> Result<Database, ConfigError> {
    const VAR: &str = "GATEHOUSE_DATABASE_URL";
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        url::Url::parse(url).map_err(|e| err(VAR, format!("invalid postgres URL: {e}")))?;
        return Ok(Database::Postgres { url: url.to_owned() });
    }
    if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path.contains(":memory:") || path.starts_with(':') {
            return Err(err(VAR, "SQLite needs a file path, e.g. sqlite://gatehouse.db"));
        }
        return Ok(Database::Sqlite { url: format!("sqlite://{path}"), path: PathBuf::from(path) });
    }
    Err(err(VAR, "must start with sqlite:// or postgres://"))
}

fn parse_public_url(text: &str) -> Result<url::Url, ConfigError> {
    const VAR: &str = "GATEHOUSE_PUBLIC_URL";
    let url = url::Url::parse(text).map_err(|e| err(VAR, format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(err(VAR, "must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err(VAR, "may not have a query or fragment"));
    }
    // Keep any path prefix but drop the trailing slash, so joins are uniform.
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

fn parse_bool(value: Option<&str>, default: bool, var: &str) -> Result<bool, ConfigError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(err(var, format!("{other:?} is not true or false"))),
    }
}

fn parse_number(value: Option<&str>, default: usize, min: usize, max: usize, var: &str) -> Result<usize, ConfigError> {
    let Some(text) = value else {
        return Ok(default);
    };
    let n: usize = text.parse().map_err(|_| err(var, format!("{text:?} is not a whole number")))?;
    if !(min..=max).contains(&n) {
        return Err(err(var, format!("must be between {min} and {max}")));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn no_configuration_means_embedded_defaults() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(c.database, Database::Sqlite { url: "sqlite://gatehouse.db".into(), path: "gatehouse.db".into() });
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(c.master_key, MasterKeySource::File("gatehouse.db.key".into()));
        assert!(c.redis_url.is_none() && c.admin_token.is_none() && c.smtp_url.is_none());
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases = [
            ("GATEHOUSE_LISTEN", "nowhere"),
            ("GATEHOUSE_DATABASE_URL", "mysql://x"),
            ("GATEHOUSE_DATABASE_URL", "sqlite::memory:"),
            ("GATEHOUSE_PUBLIC_URL", "ftp://x"),
            ("GATEHOUSE_MASTER_KEY", "c2hvcnQ="),
            ("GATEHOUSE_ADMIN_TOKEN", "password"),
            ("GATEHOUSE_SMTP_URL", "http://mail"),
            ("GATEHOUSE_REDIS_URL", "redis://a,http://b"),
            ("GATEHOUSE_LOG_FORMAT", "xml"),
            ("GATEHOUSE_AUDIT_READS", "maybe"),
            ("GATEHOUSE_MAX_BODY_BYTES", "1"),
            ("GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip"),
        ];
        for (var, value) in cases {
            let e = Config::from_vars(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.var, var, "{value}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn postgres_requires_a_master_key() {
        let e = Config::from_vars(&vars(&[("GATEHOUSE_DATABASE_URL", "postgres://localhost/db")])).unwrap_err();
        assert_eq!(e.var, "GATEHOUSE_MASTER_KEY");
        let key = MasterKey::generate().encode();
        let c = Config::from_vars(&vars(&[
            ("GATEHOUSE_DATABASE_URL", "postgres://localhost/db"),
            ("GATEHOUSE_MASTER_KEY", &key),
        ]));
        assert!(c.is_ok());
    }

    #[test]
    fn the_toml_file_is_read_and_the_environment_overrides_it() {
        let path =
            std::env::temp_dir().join(format!("gatehouse-config-{}.toml", gatehouse_core::ids::EventId::generate()));
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\naudit_reads = false\nredis_prefix = \"x:\"\n").unwrap();
        let file = path.display().to_string();
        let c = Config::from_vars(&vars(&[("GATEHOUSE_CONFIG", &file), ("GATEHOUSE_REDIS_PREFIX", "y:")])).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert!(!c.audit_reads);
        assert_eq!(c.redis_prefix, "y:");
        std::fs::write(&path, "lisen = \"typo\"\n").unwrap();
        assert_eq!(Config::from_vars(&vars(&[("GATEHOUSE_CONFIG", &file)])).unwrap_err().var, "GATEHOUSE_CONFIG");
        std::fs::remove_file(path).unwrap();
    }
}

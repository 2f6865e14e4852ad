//! Which host variables may reach a step.
//!
//! A step starts from an empty environment and gets host variables only by name (`pass_env`).
//! That alone is not enough: a bundle is written by whoever holds a submit token, and the host
//! it runs on holds the runtime's own credentials. So names fall in three classes:
//! - **runtime secrets** (`MN_GRPC_ADMIN_TOKEN`, `MN_REDIS_URL`, any `MN_*` named like a
//!   credential) never reach a step; asking for one is a validation error;
//! - **secret-like** names (`OPENAI_API_KEY`, `AWS_SECRET_ACCESS_KEY`, `DB_PASSWORD`) reach a step
//!   only where the node's operator grants them ([`Grants`], `MN_EXECUTOR_SECRET_ENV`), because
//!   the bundle's author and the host's owner are not always the same person;
//! - everything else is passed as asked.

/// How a variable name is treated when a bundle asks for it in `pass_env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvClass {
    /// Passed when asked.
    Plain,
    /// Passed only when granted by the node.
    SecretLike,
    /// Never passed.
    RuntimeSecret,
}

/// Words that mark a name as holding a credential. Matched on `_`-separated words so that
/// `KEYBOARD_LAYOUT` or `MONKEY` stay plain while `API_KEY` and `SSH_KEY_PATH` do not.
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "TOKENS",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "SECRET",
    "SECRETS",
    "CREDENTIAL",
    "CREDENTIALS",
    "KEY",
    "APIKEY",
    "PRIVATE",
    "AUTH",
    "COOKIE",
    "SESSION",
];

/// Runtime variables that carry a credential whatever they are called: the Redis URL may hold
/// a password, and the Sentinel settings their own.
const RUNTIME_SECRET_PREFIXES: &[&str] = &["MN_REDIS_", "MN_GRPC_"];

/// Classifies `name` (as written in `pass_env`).
pub fn classify(name: &str) -> EnvClass {
    let upper = name.to_ascii_uppercase();
    let secret_like = upper
        .split('_')
        .any(|word| SECRET_WORDS.contains(&word) || word.ends_with("TOKEN"));
    let runtime = upper.starts_with("MN_") || upper.starts_with("MIRROR_NEURON_");
    if runtime && (secret_like || RUNTIME_SECRET_PREFIXES.iter().any(|p| upper.starts_with(p))) {
        EnvClass::RuntimeSecret
    } else if secret_like {
        EnvClass::SecretLike
    } else {
        EnvClass::Plain
    }
}

/// Why `name` may never be passed, for validation errors; `None` when it may be.
pub fn refusal(name: &str) -> Option<String> {
    (classify(name) == EnvClass::RuntimeSecret).then(|| {
        format!(
            "{name} is a credential of the runtime itself and never reaches a step; \
             give the step its own variable through `environment` or a secret-like name the \
             node grants (MN_EXECUTOR_SECRET_ENV)"
        )
    })
}

/// The secret-like names a node lets through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Grants {
    /// None (the default for `serve`).
    #[default]
    None,
    /// These names, compared exactly (case-sensitive, as the environment is).
    Names(Vec<String>),
    /// All secret-like names (`*`): a local `run` by the host's own user, or an operator's choice.
    All,
}

impl Grants {
    /// Parses `MN_EXECUTOR_SECRET_ENV`: a comma-separated list of names, or `*`.
    pub fn parse(value: &str) -> Grants {
        let names: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        if names.iter().any(|n| n == "*") {
            Grants::All
        } else if names.is_empty() {
            Grants::None
        } else {
            Grants::Names(names)
        }
    }

    fn grants(&self, name: &str) -> bool {
        match self {
            Grants::None => false,
            Grants::All => true,
            Grants::Names(names) => names.iter().any(|n| n == name),
        }
    }

    /// Whether a step may receive the host variable `name`.
    pub fn allows(&self, name: &str) -> bool {
        match classify(name) {
            EnvClass::Plain => true,
            EnvClass::SecretLike => self.grants(name),
            EnvClass::RuntimeSecret => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_credentials_are_never_passed() {
        for name in [
            "MN_GRPC_ADMIN_TOKEN",
            "MN_GRPC_OPERATOR_TOKEN",
            "MN_GRPC_TOKEN",
            "MN_REDIS_URL",
            "MN_REDIS_SENTINEL_PASSWORD",
            "MN_BLOB_SHARE_KEY",
            "mn_grpc_admin_token",
        ] {
            assert_eq!(classify(name), EnvClass::RuntimeSecret, "{name}");
            assert!(refusal(name).is_some_and(|r| r.contains(name)), "{name}");
            assert!(!Grants::All.allows(name), "{name}");
        }
    }

    #[test]
    fn secret_like_names_need_a_grant() {
        for name in [
            "OPENAI_API_KEY",
            "GEMINI_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "GITHUB_TOKEN",
            "HF_TOKEN",
            "SLACK_BOTTOKEN",
            "SSH_KEY_PATH",
        ] {
            assert_eq!(classify(name), EnvClass::SecretLike, "{name}");
            assert!(refusal(name).is_none(), "{name}");
            assert!(!Grants::None.allows(name), "{name}");
            assert!(Grants::All.allows(name), "{name}");
        }
        let some = Grants::parse(" OPENAI_API_KEY, HF_TOKEN ,");
        assert!(some.allows("OPENAI_API_KEY"));
        assert!(some.allows("HF_TOKEN"));
        assert!(!some.allows("GITHUB_TOKEN"));
        assert_eq!(Grants::parse("A,*"), Grants::All);
        assert_eq!(Grants::parse(" , "), Grants::None);
    }

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "PATH",
            "HOME",
            "LANG",
            "KEYBOARD_LAYOUT",
            "MONKEY_COUNT",
            "MN_ALLOCATION_JSON",
            "MN_PORT_DEMO",
            "PYTHONPATH",
        ] {
            assert_eq!(classify(name), EnvClass::Plain, "{name}");
            assert!(Grants::None.allows(name), "{name}");
        }
    }
}

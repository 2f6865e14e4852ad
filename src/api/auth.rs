//! Bearer-token authentication for every RPC but health, in constant time.
//!
//! `MN_GRPC_AUTH_TOKEN` (operator) and `MN_GRPC_ADMIN_TOKEN` (admin) come from the environment
//! or from files named by `*_FILE`. The admin token passes every check; destructive RPCs
//! require it when one is configured. Tokens are never logged or sent back.

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Who is calling, as established by the token (stored in the request's extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No token is configured: everyone is an operator (the server is loopback-only then).
    Open,
    Operator,
    Admin,
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    operator: Option<String>,
    admin: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token, not even in debug output.
        f.debug_struct("Tokens")
            .field("operator", &self.operator.as_ref().map(|_| "<set>"))
            .field("admin", &self.admin.as_ref().map(|_| "<set>"))
            .finish()
    }
}

fn read_token(var: &str, file_var: &str) -> anyhow::Result<Option<String>> {
    if let Some(t) = crate::config::var(var) {
        return Ok(Some(t.trim().to_string()));
    }
    match crate::config::var(file_var) {
        Some(path) => {
            let t = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("{file_var}: cannot read {path}: {e}"))?;
            let t = t.trim().to_string();
            anyhow::ensure!(!t.is_empty(), "{file_var}: {path} is empty");
            Ok(Some(t))
        }
        None => Ok(None),
    }
}

impl Tokens {
    pub fn new(operator: Option<String>, admin: Option<String>) -> Tokens {
        Tokens { operator, admin }
    }

    /// Reads `MN_GRPC_AUTH_TOKEN[_FILE]` and `MN_GRPC_ADMIN_TOKEN[_FILE]`.
    pub fn from_env() -> anyhow::Result<Tokens> {
        Ok(Tokens {
            operator: read_token("MN_GRPC_AUTH_TOKEN", "MN_GRPC_AUTH_TOKEN_FILE")?,
            admin: read_token("MN_GRPC_ADMIN_TOKEN", "MN_GRPC_ADMIN_TOKEN_FILE")?,
        })
    }

    /// True when any token is configured.
    pub fn any(&self) -> bool {
        self.operator.is_some() || self.admin.is_some()
    }

    /// True when destructive calls need the admin token.
    pub fn admin_required(&self) -> bool {
        self.admin.is_some()
    }

    /// Establishes the caller from an `authorization` header value.
    pub fn check(&self, header: Option<&str>) -> Result<Caller, Status> {
        if !self.any() {
            return Ok(Caller::Open);
        }
        let presented = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(presented) = presented else {
            return Err(Status::unauthenticated(
                "missing authorization: Bearer <token>",
            ));
        };
        let matches = |t: &Option<String>| {
            t.as_ref()
                .is_some_and(|t| bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
        };
        if matches(&self.admin) {
            return Ok(Caller::Admin);
        }
        if matches(&self.operator) {
            return Ok(Caller::Operator);
        }
        Err(Status::unauthenticated("invalid token"))
    }
}

/// The tonic interceptor: rejects unauthenticated calls, records the caller.
#[derive(Clone, Debug)]
pub struct Authenticator {
    tokens: Tokens,
}

impl Authenticator {
    pub fn new(tokens: Tokens) -> Authenticator {
        Authenticator { tokens }
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let caller = self.tokens.check(header)?;
        request.extensions_mut().insert(caller);
        request
            .extensions_mut()
            .insert(AdminPolicy(self.tokens.admin_required()));
        Ok(request)
    }
}

/// Whether an admin token is configured (so destructive calls require it).
#[derive(Debug, Clone, Copy)]
pub struct AdminPolicy(pub bool);

/// For destructive RPCs: passes when no admin token is configured or the caller is admin.
pub fn require_admin<T>(request: &Request<T>) -> Result<(), Status> {
    let needed = request
        .extensions()
        .get::<AdminPolicy>()
        .is_some_and(|p| p.0);
    let caller = request
        .extensions()
        .get::<Caller>()
        .copied()
        .unwrap_or(Caller::Open);
    if needed && caller != Caller::Admin {
        return Err(Status::permission_denied(
            "this call is destructive and requires MN_GRPC_ADMIN_TOKEN",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tokens_means_open() {
        assert_eq!(Tokens::default().check(None).unwrap(), Caller::Open);
    }

    #[test]
    fn tokens_are_checked_and_never_echoed() {
        let t = Tokens::new(Some("op-secret".into()), Some("admin-secret".into()));
        assert_eq!(t.check(Some("Bearer op-secret")).unwrap(), Caller::Operator);
        assert_eq!(t.check(Some("Bearer admin-secret")).unwrap(), Caller::Admin);
        for bad in [
            None,
            Some("op-secret"),
            Some("Bearer wrong"),
            Some("Bearer "),
            Some("Basic op-secret"),
        ] {
            let err = t.check(bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated);
            assert!(
                !err.message().contains("secret"),
                "token leaked: {}",
                err.message()
            );
        }
        assert!(!format!("{t:?}").contains("secret"));
    }
}

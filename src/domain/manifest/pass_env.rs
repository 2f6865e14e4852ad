//! `config.pass_env`: host variables a step asks for by name. The runtime's own credentials
//! are refused here, at validation, so a bundle asking for `MN_GRPC_ADMIN_TOKEN` never runs
//! (see [`crate::domain::secrets`]).

use serde_json::{Map, Value};

use super::error::{Errors, join};
use crate::domain::secrets;

/// Reports each `pass_env` entry that names a runtime credential.
pub(crate) fn check(config: &Map<String, Value>, config_path: &str, errs: &mut Errors) {
    let Some(Value::Array(names)) = config.get("pass_env") else {
        return;
    };
    let path = join(config_path, "pass_env");
    for (i, name) in names.iter().enumerate() {
        if let Some(why) = name.as_str().and_then(secrets::refusal) {
            errs.push(format!("{path}[{i}]"), why);
        }
    }
}

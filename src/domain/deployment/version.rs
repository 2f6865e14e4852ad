//! Deployment versions: decimal strings from `"1"`, each new one the highest plus one.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A version number. Stored and shown as a decimal string, as the original did, so clients
/// that compare strings keep working; ordered as a number so `"10"` follows `"9"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

impl Version {
    pub const FIRST: Version = Version(1);

    /// Reads `"12"`; anything but plain decimal digits is not a version.
    pub fn parse(s: &str) -> Option<Version> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().map(Version)
    }

    /// The version after the highest of `existing`, or `"1"` when there is none.
    pub fn next_after<'a>(existing: impl IntoIterator<Item = &'a Version>) -> Version {
        existing
            .into_iter()
            .max()
            .map_or(Version::FIRST, |v| Version(v.0.saturating_add(1)))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a version")))
    }
}

/// One version of a deployment (core-spec 9.2): what was deployed and whether it became
/// the stable version rollbacks return to.
/// Where a version's payloads are: the archive digest any node can fetch, and the folder on
/// the machine that submitted it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: Version,
    /// The job running this version (the same job across in-place agent updates).
    pub job_id: String,
    /// The normalised manifest (`Manifest::to_value`), so a rollback can re-plan from it.
    pub manifest: Value,
    /// Where the archived bundle of this version lives, when the runtime archived one.
    pub manifest_ref: Option<String>,
    /// The version's payloads: a rollback runs them again.
    #[serde(default)]
    pub bundle: BundleRef,
    /// An operator's label, usable as a rollback target.
    pub tag: Option<String>,
    pub stable: bool,
    pub submitted_at_ms: i64,
    pub updated_at_ms: i64,
}

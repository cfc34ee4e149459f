//! The result of checking a credential against its provider.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a live check concluded. Holds no secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Verified,
    MissingPermissions,
    Invalid,
    Unverified,
}

impl CheckStatus {
    /// The stored and logged name (`missing_permissions`), as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::MissingPermissions => "missing_permissions",
            Self::Invalid => "invalid",
            Self::Unverified => "unverified",
        }
    }

    /// The stored name back (`None` for anything else).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Verified,
            Self::MissingPermissions,
            Self::Invalid,
            Self::Unverified,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// The status in words, for people (staff emails).
    pub fn in_words(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::MissingPermissions => "missing permissions",
            Self::Invalid => "refused by the provider",
            Self::Unverified => "not verified yet",
        }
    }
}

/// Stored with each secret as JSON and shown to staff (`check` in the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Check)]
pub struct CheckResult {
    pub status: CheckStatus,
    /// Permissions the credential lacks, by the provider's names.
    #[serde(default)]
    pub missing: Vec<String>,
    pub checked_at: Option<DateTime<Utc>>,
    pub detail: String,
    /// The form field an `invalid` result is about (shown beside it on the
    /// re-rendered form). Decided by the provider's check, never guessed
    /// from the wording of `detail`; not stored.
    #[serde(skip)]
    pub field: Option<super::FieldName>,
}

impl CheckResult {
    /// A credential that could not be (or was not) checked.
    pub fn unverified(detail: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Unverified,
            missing: Vec::new(),
            checked_at: Some(Utc::now()),
            detail: detail.into(),
            field: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CheckStatus;

    #[test]
    fn the_status_name_in_metrics_and_logs_is_the_serde_name() {
        for s in [
            CheckStatus::Verified,
            CheckStatus::MissingPermissions,
            CheckStatus::Invalid,
            CheckStatus::Unverified,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}

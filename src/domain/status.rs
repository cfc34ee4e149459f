//! A secret's place in its lifecycle: `received` → `revealed` → `ingested`,
//! and `shredded` from any of them. The names are the `secrets.status`
//! column's values and the API's; this enum is the only place they are spelled.

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretStatus {
    /// Stored; nobody has seen it yet.
    Received,
    /// Decrypted for staff at least once.
    Revealed,
    /// Staff confirmed it is in use downstream.
    Ingested,
    /// Ciphertext and wrapped key deleted; only metadata is left.
    Shredded,
}

impl SecretStatus {
    pub const ALL: [Self; 4] = [
        Self::Received,
        Self::Revealed,
        Self::Ingested,
        Self::Shredded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Revealed => "revealed",
            Self::Ingested => "ingested",
            Self::Shredded => "shredded",
        }
    }

    /// Whether a secret in this status may move to `to`: only forward, a
    /// reveal before ingestion, and shredding from anywhere but the end.
    pub fn can_become(self, to: Self) -> bool {
        use SecretStatus::*;
        matches!(
            (self, to),
            (Received, Revealed)
                | (Revealed, Ingested)
                | (Received | Revealed | Ingested, Shredded)
        )
    }

    /// The names, for error messages (`received, revealed, …`).
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for SecretStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with a status name (`meta.status == "ingested"` in tests and
/// scripts that read the API's strings).
impl PartialEq<&str> for SecretStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl FromStr for SecretStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}: use one of {}", Self::names()))
    }
}

// Stored as TEXT (no Postgres enum type: the column predates this type and
// a CHECK constraint guards it), so encode and decode go through `&str`.
impl Type<Postgres> for SecretStatus {
    fn type_info() -> PgTypeInfo {
        <&str as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for SecretStatus {
    fn encode_by_ref(
        &self,
        buf: &mut PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as Encode<Postgres>>::encode(self.as_str(), buf)
    }
}

impl Decode<'_, Postgres> for SecretStatus {
    fn decode(value: PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(<&str as Decode<Postgres>>::decode(value)?.parse()?)
    }
}

#[cfg(test)]
mod tests {
    use super::SecretStatus::{self, *};

    #[test]
    fn names_round_trip_through_text_and_json() {
        for s in SecretStatus::ALL {
            assert_eq!(s.as_str().parse::<SecretStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("Received".parse::<SecretStatus>().is_err());
    }

    #[test]
    fn a_secret_moves_only_forward_and_is_shredded_once() {
        assert!(Received.can_become(Revealed));
        assert!(Revealed.can_become(Ingested));
        assert!(!Received.can_become(Ingested));
        assert!(!Ingested.can_become(Ingested));
        assert!(!Ingested.can_become(Revealed));
        for s in [Received, Revealed, Ingested] {
            assert!(s.can_become(Shredded));
        }
        for s in SecretStatus::ALL {
            assert!(!Shredded.can_become(s));
        }
    }
}

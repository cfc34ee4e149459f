//! `keydrop audit verify`: walk the chain and name the first broken event.

use super::{hex, seal_hash, GENESIS};
use crate::store::audit_chain;
use sqlx::PgPool;

/// An intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Sealed events (the chain's length).
    pub events: i64,
    /// Hash of the last seal (hex); `None` for an empty chain.
    pub head: Option<String>,
    /// Events written but not sealed yet (sealing runs in `keydrop serve`).
    pub unsealed: i64,
}

/// Where the chain breaks. Each names the first event affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("event {event_id} (seal #{seq}) was modified, or swapped with another event: its content no longer matches its seal")]
    Modified { seq: i64, event_id: i64 },
    #[error("event {event_id} (seal #{seq}) was deleted")]
    Deleted { seq: i64, event_id: i64 },
    #[error("event {event_id} was inserted out of order: it sorts before the sealed head but was never sealed")]
    Inserted { event_id: i64 },
    #[error("event {event_id} (seal #{seq}) is out of order: the chain expects events in (txid, id) order")]
    Reordered { seq: i64, event_id: i64 },
    #[error("seal #{seq} (event {event_id}) does not link to seal #{prev}: seals were removed or rewritten")]
    Relinked { seq: i64, event_id: i64, prev: i64 },
    #[error(
        "seal #{expected} is missing (next is #{found}, event {event_id}): seals were deleted"
    )]
    MissingSeal {
        expected: i64,
        found: i64,
        event_id: i64,
    },
    #[error("anchor seal #{seq} {problem}: the chain was rewritten or truncated since that head was recorded")]
    Anchor { seq: i64, problem: String },
}

/// A head recorded earlier: `SEQ:HEXHASH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl Anchor {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: use SEQ:HASH as printed by verify"))?;
        let seq = seq
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{s:?}: SEQ must be a positive number"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{s:?}: HASH must be 64 hex digits"));
        }
        Ok(Self { seq, hash })
    }
}

/// Failure to verify: the chain is broken, or the database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit chain broken: {0}")]
    Broken(#[from] Broken),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

const PAGE: i64 = 1000;

/// Walks every seal in order, recomputing each hash from the stored event.
pub async fn verify(db: &PgPool, anchors: &[Anchor]) -> Result<Verified, VerifyError> {
    let mut prev_hash = GENESIS.to_vec();
    let mut prev_key: Option<(i64, i64)> = None;
    let mut last_seq = 0;
    let mut anchor_seen = vec![false; anchors.len()];
    loop {
        let page = audit_chain::seals_after(db, last_seq, PAGE).await?;
        let n = page.len() as i64;
        for s in page {
            if s.seq != last_seq + 1 {
                return Err(Broken::MissingSeal {
                    expected: last_seq + 1,
                    found: s.seq,
                    event_id: s.event_id,
                }
                .into());
            }
            if s.prev_hash != prev_hash {
                return Err(Broken::Relinked {
                    seq: s.seq,
                    event_id: s.event_id,
                    prev: last_seq,
                }
                .into());
            }
            let Some(e) = &s.event else {
                return Err(Broken::Deleted {
                    seq: s.seq,
                    event_id: s.event_id,
                }
                .into());
            };
            if seal_hash(&prev_hash, e) != s.hash || e.txid != s.seal_txid {
                return Err(Broken::Modified {
                    seq: s.seq,
                    event_id: s.event_id,
                }
                .into());
            }
            if prev_key.is_some_and(|k| k >= (e.txid, e.id)) {
                return Err(Broken::Reordered {
                    seq: s.seq,
                    event_id: s.event_id,
                }
                .into());
            }
            for (i, a) in anchors.iter().enumerate() {
                if a.seq == s.seq {
                    if hex(&s.hash) != a.hash {
                        return Err(Broken::Anchor {
                            seq: a.seq,
                            problem: format!("has hash {}, not {}", hex(&s.hash), a.hash),
                        }
                        .into());
                    }
                    anchor_seen[i] = true;
                }
            }
            prev_key = Some((e.txid, e.id));
            prev_hash = s.hash;
            last_seq = s.seq;
        }
        if n < PAGE {
            break;
        }
    }
    if let Some(i) = anchor_seen.iter().position(|seen| !seen) {
        return Err(Broken::Anchor {
            seq: anchors[i].seq,
            problem: format!("does not exist (the chain has {last_seq} seals)"),
        }
        .into());
    }
    if let Some((txid, id)) = prev_key {
        if let Some(event_id) = audit_chain::first_unsealed_before(db, txid, id).await? {
            return Err(Broken::Inserted { event_id }.into());
        }
    }
    Ok(Verified {
        events: last_seq,
        head: (last_seq > 0).then(|| hex(&prev_hash)),
        unsealed: audit_chain::unsealed_count(db).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_from_what_verify_prints() {
        let h = "ab".repeat(32);
        assert_eq!(
            Anchor::parse(&format!("12:{}", h.to_uppercase())).unwrap(),
            Anchor {
                seq: 12,
                hash: h.clone()
            }
        );
        assert!(Anchor::parse(&h).is_err());
        assert!(Anchor::parse(&format!("0:{h}")).is_err());
        assert!(Anchor::parse("3:abc").is_err());
    }
}

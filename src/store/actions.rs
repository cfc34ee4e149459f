//! The writes of the two hot actions, a submission and a reveal, each as one
//! statement (data-modifying CTEs in the statement's own transaction), so an
//! action costs one database round-trip where `BEGIN`, a lock, four writes and
//! `COMMIT` cost six or seven (issue 16; BENCHMARKS.md has the numbers). The
//! statement commits all of its parts or none, as the transaction did.

use super::audit::NewEvent;
use super::requests::LinkState;
use super::secrets::NewSecret;
use super::JsonText;
use crate::crypto::FingerprintKind;
use crate::domain::SecretStatus;
use sqlx::PgExecutor;
use uuid::Uuid;

/// A webhook outbox message, built by `crate::webhooks`.
#[derive(Debug)]
pub struct Message {
    pub id: Uuid,
    pub event_type: &'static str,
    pub payload: JsonText,
}

/// What [`submit`] did.
#[derive(Debug)]
pub enum Submitted {
    /// Secret, use, audit event and messages committed.
    Stored,
    /// Nothing written: the link (`None` if it does not exist) was not open,
    /// in the state it had when locked, or the submission id was already
    /// stored (`open` then).
    NotStored {
        state: Option<LinkState>,
        open: bool,
    },
}

/// The messages as three arrays, for `UNNEST`.
type Columns = (Vec<Uuid>, Vec<&'static str>, Vec<JsonText>);

fn columns(messages: Vec<Message>) -> Columns {
    let n = messages.len();
    let mut cols: Columns = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for m in messages {
        cols.0.push(m.id);
        cols.1.push(m.event_type);
        cols.2.push(m.payload);
    }
    cols
}

/// Locks the link; if it is open (pending, or expired but within `grace_secs`
/// of its expiry), inserts the secret (unless its submission id was stored
/// already), counts the use, and writes `event` and `messages`. The link's
/// organization comes from the locked row. `grace_secs` also goes to the
/// lifecycle trigger (`keydrop.link_grace`) when the link has expired.
/// `staff_mail` is the staff email's detail (`crate::mail::submission_note`),
/// queued for `KEYDROP_NOTIFY_EMAIL` and for the link's creator when they
/// have an email (`drop_requests.created_by_email`).
pub async fn submit(
    db: impl PgExecutor<'_>,
    s: NewSecret<'_>,
    grace_secs: Option<f64>,
    mut event: NewEvent<'_>,
    messages: Vec<Message>,
    staff_mail: Option<JsonText>,
) -> sqlx::Result<Submitted> {
    let (ids, types, payloads) = columns(messages);
    let detail = event.stored_detail();
    let row = sqlx::query!(
        r#"WITH l AS (
             SELECT id, organization, created_by_email, max_uses, use_count, expires_at, revoked_at,
                    revoked_at IS NULL AND use_count < max_uses
                      AND (expires_at > now()
                           OR ($17::float8 IS NOT NULL AND now() <= expires_at + make_interval(secs => $17))) AS open
             FROM drop_requests WHERE id = $2 FOR UPDATE),
           ins AS (
             INSERT INTO secrets (id, request_id, organization, provider, submitter_name, submitter_email,
                                  fingerprint, payload, wrapped_dek, kek_id, format_version, check_result,
                                  fingerprint_kind, fingerprint_key, secret_length, submission_id, browser_hash)
             SELECT $1, l.id, l.organization, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
             FROM l WHERE l.open
             ON CONFLICT (request_id, submission_id) WHERE submission_id IS NOT NULL DO NOTHING
             RETURNING id, request_id),
           used AS (
             UPDATE drop_requests d SET use_count = d.use_count + 1, used_at = coalesce(d.used_at, now())
             FROM ins, l
             WHERE d.id = ins.request_id
               AND set_config('keydrop.link_grace',
                              CASE WHEN l.expires_at <= now() THEN coalesce($17::float8 || ' seconds', '') ELSE '' END,
                              true) IS NOT NULL),
           ev AS (
             INSERT INTO audit_events (actor_kind, actor_id, actor_name, client_ip, action, outcome, secret_id,
                                       request_id, detail)
             SELECT $18, $19, $20, $21, $22, $23, ins.id, ins.request_id, $24 FROM ins),
           msg AS (
             INSERT INTO webhook_messages (id, event_type, payload)
             SELECT m.id, m.event_type, m.payload
             FROM ins, UNNEST($25::uuid[], $26::text[], $27::jsonb[]) AS m(id, event_type, payload)),
           mail AS (
            -- To staff (recipient NULL: KEYDROP_NOTIFY_EMAIL) and to the link's
            -- creator when a console user with an email made it.
            INSERT INTO mail_messages (id, kind, request_id, secret_id, recipient, detail)
            SELECT gen_random_uuid(), 'submission', ins.request_id, ins.id, r.recipient, $28::jsonb
            FROM ins, l,
                 LATERAL (SELECT NULL::text UNION ALL
                          SELECT l.created_by_email WHERE l.created_by_email IS NOT NULL) AS r(recipient)
            WHERE $28::jsonb IS NOT NULL)
           SELECT l.open AS "open!", EXISTS (SELECT 1 FROM ins) AS "stored!", l.revoked_at IS NOT NULL AS "revoked!",
                  l.use_count AS "use_count!", l.max_uses AS "max_uses!", l.expires_at AS "expires_at!"
           FROM l"#,
        s.id,
        s.request_id,
        s.provider,
        s.submitter_name,
        s.submitter_email,
        s.fingerprint.text,
        s.envelope.payload,
        s.envelope.wrapped_dek,
        s.envelope.kek_id,
        s.envelope.format_version,
        s.check_result as _,
        s.fingerprint.kind.as_str(),
        (s.fingerprint.kind == FingerprintKind::Keyed).then_some(s.fingerprint_key),
        s.secret_length,
        s.submission_id,
        s.browser_hash,
        grace_secs,
        event.actor.kind,
        event.actor.id,
        event.actor.name,
        event.actor.client_ip,
        event.action,
        event.outcome,
        detail as _,
        &ids,
        &types as &[&str],
        &payloads as _,
        staff_mail as _,
    )
    .fetch_optional(db)
    .await?;
    // Only the flags and the columns that decide the link's state: the
    // caller already holds the link as it read it by token.
    Ok(match row {
        Some(r) if r.stored => Submitted::Stored,
        Some(r) => Submitted::NotStored {
            open: r.open,
            state: Some(LinkState::of(
                r.revoked,
                r.use_count,
                r.max_uses,
                r.expires_at,
                chrono::Utc::now(),
            )),
        },
        None => Submitted::NotStored {
            state: None,
            open: false,
        },
    })
}

/// Records a reveal of a secret whose envelope the caller has opened: locks
/// the row, moves `received` to `revealed` (stamping `revealed_at`), writes
/// `event` and `messages`. `false`, with nothing written, if the secret was
/// shredded (or is gone) since it was read.
pub async fn reveal(
    db: impl PgExecutor<'_>,
    id: Uuid,
    mut event: NewEvent<'_>,
    messages: Vec<Message>,
) -> sqlx::Result<bool> {
    let (ids, types, payloads) = columns(messages);
    let detail = event.stored_detail();
    sqlx::query_scalar!(
        r#"WITH s AS (
             SELECT id, status FROM secrets WHERE id = $1 AND payload IS NOT NULL FOR UPDATE),
           up AS (
             UPDATE secrets t SET status = $13, revealed_at = coalesce(t.revealed_at, now())
             FROM s WHERE t.id = s.id AND s.status = $14),
           ev AS (
             INSERT INTO audit_events (actor_kind, actor_id, actor_name, client_ip, action, outcome, secret_id,
                                       request_id, detail)
             SELECT $2, $3, $4, $5, $6, $7, s.id, $8, $9 FROM s),
           msg AS (
             INSERT INTO webhook_messages (id, event_type, payload)
             SELECT m.id, m.event_type, m.payload
             FROM s, UNNEST($10::uuid[], $11::text[], $12::jsonb[]) AS m(id, event_type, payload))
           SELECT EXISTS (SELECT 1 FROM s) AS "revealed!""#,
        id,
        event.actor.kind,
        event.actor.id,
        event.actor.name,
        event.actor.client_ip,
        event.action,
        event.outcome,
        event.request_id,
        detail as _,
        &ids,
        &types as &[&str],
        &payloads as _,
        SecretStatus::Revealed.as_str(),
        SecretStatus::Received.as_str(),
    )
    .fetch_one(db)
    .await
}

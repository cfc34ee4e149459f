//! Seeds secrets for the rotation benchmark: every row a real envelope sealed
//! by Keydrop's own `crypto::seal` for its own id, so a rewrap must really
//! unwrap each data key (the AAD binds it to the row: copied blobs would fail).

use keydrop::crypto::{self, Context, Keyring};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use std::time::Instant;
use uuid::Uuid;

const BATCH: usize = 5_000;

pub async fn run(
    database_url: &str,
    keks: &str,
    request_id: Uuid,
    count: usize,
) -> anyhow::Result<Value> {
    let ring = Keyring::parse(keks).map_err(|e| anyhow::anyhow!("KEK ring: {e}"))?;
    let db = PgPoolOptions::new()
        .max_connections(2)
        .connect(database_url)
        .await?;
    let start = Instant::now();
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let mut ids = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        let mut wrapped = Vec::with_capacity(n);
        let mut kek_id = String::new();
        for _ in 0..n {
            let id = Uuid::new_v4();
            let plaintext = format!(r#"{{"label":"Harvest API key","secret":"seed-{id}"}}"#);
            let ctx = Context {
                secret_id: id,
                provider: "generic",
            };
            let env = crypto::seal(&ring, ctx, plaintext.as_bytes())?;
            ids.push(id);
            payloads.push(env.payload);
            wrapped.push(env.wrapped_dek);
            kek_id = env.kek_id;
        }
        sqlx::query(
            r#"INSERT INTO secrets (id, request_id, organization, provider, submitter_name, submitter_email,
                                    fingerprint, payload, wrapped_dek, kek_id, format_version, check_result)
               SELECT u.id, $4, 'Bench Co', 'generic', 'Bench Seed', 'seed@example.com', 'seed',
                      u.payload, u.dek, $5, $6, '{"status":"unverified","missing":[],"checked_at":null,"detail":"seeded"}'
               FROM UNNEST($1::uuid[], $2::bytea[], $3::bytea[]) AS u(id, payload, dek)"#,
        )
        .bind(&ids)
        .bind(&payloads)
        .bind(&wrapped)
        .bind(request_id)
        .bind(&kek_id)
        .bind(crypto::FORMAT_VERSION)
        .execute(&db)
        .await?;
        done += n;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({ "mode": "seed", "rows": done, "seconds": secs }))
}

//! `keydrop keks adopt ID`: give a configured KEK that wraps secrets but has
//! no canary one, after proving the key opens those secrets' data keys.

use crate::config::{self, Config};
use crate::store::{self, audit::Actor, canary};

#[derive(Debug, clap::Subcommand)]
pub enum KeksCmd {
    /// Record the canary of a configured KEK id that wraps secrets but has
    /// none (deleted, or never written), after checking that the configured
    /// key opens those secrets' data keys. `serve` refuses such an id until then.
    Adopt {
        /// The KEK id, as configured in KEYDROP_KEKS / KEYDROP_KEKS_FILE.
        id: String,
    },
}

/// `keydrop keks adopt ID`: prove the key, record its canary, audit it.
pub async fn keks(cmd: KeksCmd) -> anyhow::Result<()> {
    let KeksCmd::Adopt { id } = cmd;
    let config = Config::from_env()?;
    let ring = config::load_keyring()?;
    let db = store::connect(&config.database_url).await?;
    match canary::adopt(&db, &ring, &id).await? {
        canary::Adopted::AlreadyRegistered => {
            eprintln!(
                "KEK {id:?} already has a canary matching the configured key; nothing to adopt"
            );
        }
        canary::Adopted::Recorded { checked } => {
            let actor = Actor::cli();
            store::audit::record(
                &db,
                store::audit::NewEvent::success(&actor, "kek.adopted")
                    .detail(serde_json::json!({ "kek_id": id, "data_keys_checked": checked })),
            )
            .await?;
            if checked == 0 {
                eprintln!("KEK {id:?} wraps no stored secrets; its canary is recorded");
            } else {
                eprintln!(
                    "adopted KEK {id:?}: the configured key opened all {checked} data keys checked; its canary is recorded"
                );
            }
        }
    }
    Ok(())
}

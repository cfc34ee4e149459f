//! `keydrop purge`: apply the retention policy now (or count what it would
//! shred with `--dry-run`).

use crate::config::Config;
use crate::domain::SecretStatus;
use crate::ops::retention;
use crate::store;
use chrono::Utc;
use clap::Args;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Only count what the policy would shred now; shred nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let db = store::connect(&config.database_url).await?;
    let policy = retention::Policy {
        after_ingested: config.shred_after_ingested,
        unclaimed_after: config.shred_unclaimed_after,
    };
    store::require_migrated(&db).await?;
    let summary = if args.dry_run {
        retention::due(&db, &policy, Utc::now()).await?
    } else {
        retention::purge(&db, &policy, Utc::now(), &retention::actor()).await?
    };
    db.close().await;
    let verb = if args.dry_run {
        "would shred"
    } else {
        // The secrets' new status, as a verb: "shredded 3 secret(s)".
        SecretStatus::Shredded.as_str()
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let mut rules = Vec::new();
        if let Some(d) = policy.after_ingested {
            rules.push(format!(
                "{} ingested more than {} ago",
                summary.shredded_ingested,
                human(d)
            ));
        }
        if let Some(d) = policy.unclaimed_after {
            rules.push(format!(
                "{} never revealed within {}",
                summary.shredded_unclaimed,
                human(d)
            ));
        }
        if rules.is_empty() {
            println!("{verb} nothing: both retention rules are off");
        } else {
            println!("{verb} {} secret(s): {}", summary.total(), rules.join(", "));
        }
    }
    Ok(())
}

/// `7d`, `36h`, `90m` or `45s`: the largest unit that divides the duration.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::human;
    use std::time::Duration;

    #[test]
    fn durations_print_in_their_largest_whole_unit() {
        assert_eq!(human(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(human(Duration::from_secs(36 * 3600)), "36h");
        assert_eq!(human(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(human(Duration::from_secs(1)), "1s");
    }
}

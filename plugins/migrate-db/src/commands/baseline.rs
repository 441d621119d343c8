//! `baseline --version V`: for a database that predates the history table, record that its
//! schema is at V — only after its tables and columns match the profile's fingerprint of V,
//! and never when the history already holds rows.

use upgrade_shared::exit;

use crate::client::Client;
use crate::db::Db;
use crate::fingerprint;
use crate::history::{self, NewRow, RowKind};
use crate::{Args, Target};

pub async fn run(args: &Args, target: &Target, version: &str, yes: bool) -> anyhow::Result<u8> {
    let setup = super::setup(args, target)?;
    let v = super::version(&setup.profile, "version", version)?;
    let Some(fp) = fingerprint::of_version(&setup.profile, &v) else {
        anyhow::bail!(
            "profile {} declares no schema fingerprint for {}: a baseline cannot be checked",
            setup.profile.name,
            v.canonical()
        );
    };
    let (kube, namespace) = args.kube.client().await?;
    let db = Db::connect(&kube, &namespace, &setup).await?;
    let who = super::who();
    let work = async |client: &mut Client, h: super::History| -> anyhow::Result<u8> {
        let (t, exists) = (h.table, h.exists);
        if !h.rows.is_empty() {
            eprintln!(
                "refusing to baseline: {} already has a migration history ({} rows); see `status`",
                setup.database,
                h.rows.len()
            );
            return Ok(exit::FINDINGS);
        }
        let schema = fingerprint::parse_columns(
            &client
                .query(
                    "reading the schema",
                    &fingerprint::columns_query(&setup.database),
                )
                .await?,
        );
        let mismatches = fingerprint::mismatches(&fp, &schema);
        if !mismatches.is_empty() {
            eprintln!(
                "refusing to baseline: {} does not look like {} {}:",
                setup.database,
                setup.profile.name,
                v.canonical()
            );
            for m in mismatches {
                eprintln!("  - {m}");
            }
            return Ok(exit::FINDINGS);
        }
        println!(
            "{} matches the {} {} fingerprint ({} entries present, {} absent); record it as at {}",
            setup.database,
            setup.profile.name,
            v.canonical(),
            fp.present.len(),
            fp.absent.len(),
            v.canonical()
        );
        if args.dry_run.is_dry() {
            eprintln!("dry run: nothing recorded");
            return Ok(exit::OK);
        }
        if !upgrade_shared::prompt::confirm("Record the baseline?", yes)? {
            eprintln!("nothing changed");
            return Ok(exit::FINDINGS);
        }
        if !exists {
            client
                .query(
                    "creating the history table",
                    &history::create(&setup.database),
                )
                .await?;
        }
        let digest = fingerprint::digest(&fp);
        let canonical = v.canonical();
        client
            .query(
                "recording the baseline",
                &history::insert(
                    &t,
                    &NewRow {
                        kind: RowKind::Baseline,
                        script: &format!("baseline {canonical}"),
                        version_from: &canonical,
                        version_to: &canonical,
                        sha256: &digest,
                        statements: 0,
                        first_statement: 0,
                        reached: 0,
                        reached_sha256: &digest,
                        finished: true,
                        backup: None,
                        installed_by: &who,
                        reason: Some("schema matched the profile's fingerprint"),
                    },
                ),
            )
            .await?;
        let rows = history::parse_rows(
            &client
                .query("reading the history back", &history::select(&t))
                .await?
                .join("\n"),
        )?;
        match crate::decide::current_version(&rows) {
            Some(at) if at.cmp_numbers(&v).is_eq() => {
                println!("baselined: {} is at {canonical}", setup.database);
                Ok(exit::OK)
            }
            other => anyhow::bail!("the history does not confirm the baseline (it says {other:?})"),
        }
    };
    super::with_locked_history(args, &db, &setup.database, "baseline", work).await
}

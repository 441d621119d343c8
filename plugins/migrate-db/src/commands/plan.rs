//! `plan`: the chain of scripts between two versions, each with its sha256 and statements.
//! With `--from` it needs no cluster; without it, the history table says where the schema is,
//! else the version the application runs while it is below `--to`.

use upgrade_shared::output::{self, Format};

use crate::db::Db;
use crate::render::{self, PlanDoc};
use crate::{Args, Target};
use crate::{decide, fingerprint, scripts};

pub async fn run(args: &Args, target: &Target, from: Option<&str>, to: &str) -> anyhow::Result<u8> {
    let setup = super::setup(args, target)?;
    let to = super::version(&setup.profile, "to", to)?;
    let from = match from {
        Some(f) => super::version(&setup.profile, "from", f)?,
        None => {
            let (kube, namespace) = args.kube.client().await?;
            let db = Db::connect(&kube, &namespace, &setup).await?;
            let rows = db.history().await?.unwrap_or_default();
            let running = super::running_version(&kube, &namespace, &setup.profile).await;
            let recorded = decide::current_version(&rows);
            let columns = if super::needs_fit(None, recorded.as_ref(), &running, &to) {
                Some(
                    db.query(&fingerprint::columns_query(&setup.database))
                        .await?,
                )
            } else {
                None
            };
            super::starting_version(&setup, None, recorded, running, columns, &to)?
        }
    };
    let chain = scripts::chain(&setup.scripts, &from, &to)?;
    let doc = PlanDoc::new(&setup, &from, &to, &chain);
    match args.output.format {
        Format::Table => output::print(&render::plan(&doc, &args.output.styles()))?,
        format => output::print(&output::to_document(&doc, format)?)?,
    }
    Ok(upgrade_shared::exit::OK)
}

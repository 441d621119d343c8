//! `plan`: the chain of scripts between two versions, each with its sha256 and statements.
//! With `--from` it needs no cluster; without it, the history table says where the schema is.

use upgrade_shared::output::{self, Format};

use crate::render::{self, PlanDoc};
use crate::scripts;
use crate::{Args, Target};

pub async fn run(args: &Args, target: &Target, from: Option<&str>, to: &str) -> anyhow::Result<u8> {
    let setup = super::setup(args, target)?;
    let to = super::version(&setup.profile, "to", to)?;
    let Some(from) = from else {
        anyhow::bail!("--from is required: the plan is computed from the version the schema is at");
    };
    let from = super::version(&setup.profile, "from", from)?;
    let chain = scripts::chain(&setup.scripts, &from, &to)?;
    let doc = PlanDoc::new(&setup, &from, &to, &chain);
    match args.output.format {
        Format::Table => output::print(&render::plan(&doc, &args.output.styles()))?,
        format => output::print(&output::to_document(&doc, format)?)?,
    }
    Ok(upgrade_shared::exit::OK)
}

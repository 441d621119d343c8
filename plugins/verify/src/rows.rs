//! Row counts of the profile's databases, read through the database pod with the shared MySQL
//! session (credentials from the container's env or its Secret, passed over exec stdin).
//!
//! Counts are exact (`COUNT(*)` per base table, all in one client run), not the estimates of
//! `information_schema.tables.table_rows`, which InnoDB only samples.

use upgrade_shared::mysql::{self, Session, Source};
use upgrade_shared::profile::{Component, Profile};

use crate::baseline::TableRecord;

/// The SQL that lists the base tables of `databases`, one `schema<TAB>table` row each.
pub fn list_sql(databases: &[String]) -> String {
    let names: Vec<String> = databases.iter().map(|d| mysql::quote_str(d)).collect();
    format!(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema IN ({}) ORDER BY table_schema, table_name;\n",
        names.join(", ")
    )
}

/// The SQL that counts the rows of each (schema, table), one `schema<TAB>table<TAB>rows` row
/// each.
pub fn count_sql(tables: &[(String, String)]) -> String {
    let parts: Vec<String> = tables
        .iter()
        .map(|(db, t)| {
            format!(
                "SELECT {}, {}, COUNT(*) FROM {}.{}",
                mysql::quote_str(db),
                mysql::quote_str(t),
                mysql::quote_ident(db),
                mysql::quote_ident(t)
            )
        })
        .collect();
    format!("{};\n", parts.join("\nUNION ALL\n"))
}

/// Reads `schema, table, rows` rows into records of `component`.
pub fn parse_counts(
    component: &Component,
    rows: &[Vec<Option<String>>],
) -> Result<Vec<TableRecord>, String> {
    let specific = component
        .database
        .as_ref()
        .map(|d| d.version_specific_tables.clone())
        .unwrap_or_default();
    rows.iter()
        .map(|r| {
            let field = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let count = field(2).parse::<u64>().map_err(|_| {
                format!(
                    "the row count {:?} of {}.{} is not a number",
                    field(2),
                    field(0),
                    field(1)
                )
            })?;
            Ok(TableRecord {
                component: component.name.clone(),
                database: field(0),
                table: field(1).clone(),
                rows: count,
                version_specific: specific.contains(&field(1)),
            })
        })
        .collect()
}

/// Components of the profile that serve a database.
pub fn database_components(profile: &Profile) -> Vec<&Component> {
    profile
        .components
        .iter()
        .filter(|c| c.database.is_some())
        .collect()
}

/// Counts the rows of every table of a component's databases.
pub async fn count(
    client: &kube::Client,
    namespace: &str,
    component: &Component,
) -> anyhow::Result<Vec<TableRecord>> {
    let Some(database) = &component.database else {
        return Ok(Vec::new());
    };
    for d in &database.databases {
        mysql::check_identifier("database", d)?;
    }
    let db = mysql::locate(
        client,
        namespace,
        &Source::Component(Box::new(component.clone())),
        None,
    )
    .await?;
    let session = Session::open(client, db).await?;
    let listed = session.query(&list_sql(&database.databases)).await?;
    let tables: Vec<(String, String)> = listed
        .into_iter()
        .map(|r| {
            (
                r.first().cloned().flatten().unwrap_or_default(),
                r.get(1).cloned().flatten().unwrap_or_default(),
            )
        })
        .collect();
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let counted = session.query(&count_sql(&tables)).await?;
    parse_counts(component, &counted).map_err(anyhow::Error::msg)
}

/// Counts every database component's tables; failures are returned per component as text.
pub async fn count_all(
    client: &kube::Client,
    namespace: &str,
    profile: &Profile,
) -> (Vec<TableRecord>, Vec<String>) {
    let mut tables = Vec::new();
    let mut errors = Vec::new();
    for component in database_components(profile) {
        match count(client, namespace, component).await {
            Ok(t) => tables.extend(t),
            Err(e) => errors.push(format!(
                "cannot count the rows of component {} (database {}): {e:#}",
                component.name,
                component
                    .database
                    .as_ref()
                    .map(|d| d.databases.join(", "))
                    .unwrap_or_default()
            )),
        }
    }
    (tables, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_run_counts_every_table_exactly() {
        let sql = count_sql(&[
            ("eggroll_meta".into(), "t_job".into()),
            ("eggroll_meta".into(), "odd`name".into()),
        ]);
        assert_eq!(
            sql,
            "SELECT 'eggroll_meta', 't_job', COUNT(*) FROM `eggroll_meta`.`t_job`\nUNION ALL\nSELECT 'eggroll_meta', 'odd`name', COUNT(*) FROM `eggroll_meta`.`odd``name`;\n"
        );
        assert!(list_sql(&["eggroll_meta".into()]).contains("IN ('eggroll_meta')"));
    }

    #[test]
    fn counts_are_read_and_version_specific_tables_marked() {
        let fate = upgrade_shared::profile::builtin("fate").expect("fate");
        let mysql = fate.component("mysql").expect("mysql");
        let row = |t: &str, n: &str| {
            vec![
                Some("eggroll_meta".to_string()),
                Some(t.to_string()),
                Some(n.to_string()),
            ]
        };
        let got =
            parse_counts(mysql, &[row("t_job", "12"), row("server_node", "3")]).expect("parses");
        assert_eq!(got[0].rows, 12);
        assert!(!got[0].version_specific);
        assert!(got[1].version_specific);
        assert!(parse_counts(mysql, &[row("t_job", "many")]).is_err());
    }
}

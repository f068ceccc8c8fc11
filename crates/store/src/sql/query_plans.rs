//! SQLite's plans for the queries whose cost must not grow with the whole database: each
//! reads through the index meant for it and scans no kind's rows. (SQLite plans without
//! statistics, as the server runs, so the plans do not depend on the data.)

use sqlx::Row;

use super::*;

/// The plan of `sql` (its `detail` lines, joined) on a migrated SQLite database.
async fn plan(store: &SqlStore, sql: &str, binds: usize) -> String {
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
    for _ in 0..binds {
        query = query.bind("x");
    }
    let rows = query.fetch_all(&store.pool).await.expect("explain");
    rows.iter()
        .map(|row| row.try_get::<String, _>(3).expect("detail"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn sqlite() -> (SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqlStore::open_sqlite_dir(dir.path(), crate::Keyring::ephemeral().expect("key"))
        .await
        .expect("open");
    (store, dir)
}

/// No full pass over a table or over one kind's rows (`resources_by_kind`); passing over
/// the answer (`visible`, the union of the parts of a list) is fine.
fn assert_no_scan(what: &str, plan: &str) {
    let scans = plan
        .lines()
        .any(|line| line.contains("SCAN") && line != "SCAN visible");
    assert!(
        !scans && !plan.contains("resources_by_kind"),
        "{what} reads more than it answers:\n{plan}"
    );
}

#[tokio::test]
async fn a_projects_list_reads_its_rows_and_the_shared_ones_by_index() {
    let (store, _dir) = sqlite().await;
    let plan = plan(&store, LIST_VISIBLE, 2).await;
    assert_no_scan("a project's list", &plan);
    for index in ["resources_by_project", "resources_visible_to_all"] {
        assert!(plan.contains(index), "no {index} in:\n{plan}");
    }
}

#[tokio::test]
async fn subnets_of_shared_networks_are_found_through_the_reference_index() {
    let (store, _dir) = sqlite().await;
    let plan = plan(&store, LIST_VISIBLE_WITH_OWNER, 3).await;
    assert_no_scan("a project's list of subnets", &plan);
    for index in [
        "resources_by_project",
        "resources_visible_to_all",
        "refs_by_target",
    ] {
        assert!(plan.contains(index), "no {index} in:\n{plan}");
    }
}

#[tokio::test]
async fn guards_read_the_reference_index() {
    let (store, _dir) = sqlite().await;
    let first = plan(&store, FIRST_REFERRER, 3).await;
    assert_no_scan("an in-use guard", &first);
    assert!(
        first.contains("COVERING INDEX refs_by_target"),
        "an in-use guard reads more than the index:\n{first}"
    );
    let referrers = plan(&store, REFERRERS, 3).await;
    assert_no_scan("a referrers' lookup", &referrers);
    let (outer, inner) = referrers.split_once('\n').expect("two loops");
    assert!(
        outer.contains("refs_by_target") && inner.contains("sqlite_autoindex_resources_1"),
        "a referrers' lookup must go from the index to each referrer's row:\n{referrers}"
    );
}

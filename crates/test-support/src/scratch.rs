//! Scratch databases for tests: new, empty PostgreSQL databases (named `vpnaas_t_…`, made
//! with `psql` on `VPNAAS_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432`).
//! With `VPNAAS_TEST_BACKEND=postgres` the API and store suites run on them instead of
//! SQLite, so the same tests cover both backends. `scripts/test.sh` drops them afterwards.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The PostgreSQL server tests use.
fn postgres_server() -> String {
    std::env::var("VPNAAS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A new empty database's URL when tests run on PostgreSQL (`VPNAAS_TEST_BACKEND=postgres`),
/// `None` when they run on SQLite.
pub fn database_url() -> Option<String> {
    (std::env::var("VPNAAS_TEST_BACKEND").as_deref() == Ok("postgres")).then(postgres_database)
}

/// A new empty PostgreSQL database's URL, whatever the backend of the other tests (for
/// what only PostgreSQL can do, such as several servers on one database).
///
/// # Panics
/// When the database cannot be made: a test must not silently fall back to SQLite.
pub fn postgres_database() -> String {
    let server = postgres_server();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("vpnaas_t_{}_{nanos}", std::process::id());
    let out = Command::new("psql")
        .arg(format!("{server}/postgres"))
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql (PostgreSQL tests need PostgreSQL's client)");
    assert!(
        out.status.success(),
        "cannot create test database {name} on {server} (is PostgreSQL running? .ci/run starts it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{server}/{name}")
}

//! Schema migrations, applied in order at start. Plain portable SQL: the same text runs
//! on SQLite and PostgreSQL. Written here rather than with sqlx's migrator because a
//! migration may carry a data step in Rust (rewriting stored documents, which SQL alone
//! cannot do portably: [`DATA_STEPS`]), one list serves both databases, and servers
//! starting together on PostgreSQL take turns under a table lock.

/// `(version, statements)`, oldest first. Never edit a released entry: add a new one.
pub const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE resources (
            kind VARCHAR(40) NOT NULL,
            id VARCHAR(64) NOT NULL,
            project_id VARCHAR(255) NOT NULL,
            created_at BIGINT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (kind, id)
        )",
            "CREATE INDEX resources_by_kind ON resources (kind, created_at)",
            "CREATE TABLE refs (
            kind VARCHAR(40) NOT NULL,
            id VARCHAR(64) NOT NULL,
            target_kind VARCHAR(40) NOT NULL,
            target_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (kind, id, target_kind, target_id)
        )",
            "CREATE INDEX refs_by_target ON refs (target_kind, target_id, kind)",
        ],
    ),
    (
        2,
        &["CREATE TABLE connection_events (
            connection_id VARCHAR(64) NOT NULL,
            seq BIGINT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (connection_id, seq)
        )"],
    ),
    (
        3,
        &[
            // Filled for existing rows by `DataStep::MarkVisibleToAll`.
            "ALTER TABLE resources ADD COLUMN visible_to_all BOOLEAN NOT NULL DEFAULT FALSE",
            // A project's list, in creation order.
            "CREATE INDEX resources_by_project ON resources (kind, project_id, created_at, id)",
            // What every project sees: few rows, so a partial index. The flag is also a
            // column, so that SQLite's planner prefers it to `resources_by_kind`.
            "CREATE INDEX resources_visible_to_all ON resources (kind, visible_to_all, created_at, id)
             WHERE visible_to_all = TRUE",
            // With the referrer's id, an in-use guard reads the index alone (and SQLite
            // prefers it to the primary key, which would read every reference of a kind).
            "DROP INDEX refs_by_target",
            "CREATE INDEX refs_by_target ON refs (target_kind, target_id, kind, id)",
        ],
    ),
    (
        4,
        // The id of the key that seals secrets (row `sealing`): a server whose key file
        // lacks it refuses to start, and one whose file has changed follows it.
        &["CREATE TABLE secret_keys (
            name VARCHAR(16) PRIMARY KEY,
            key_id VARCHAR(64) NOT NULL
        )"],
    ),
];

/// What a migration needs besides SQL: reading the JSON documents, which portable SQL
/// cannot do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStep {
    /// Sets `visible_to_all` of the rows whose documents say every project sees them.
    MarkVisibleToAll,
}

/// `(version, step)`: run in the migration's transaction, right after its statements.
pub const DATA_STEPS: &[(i64, DataStep)] = &[(3, DataStep::MarkVisibleToAll)];

//! Schema migrations, applied in order at start. Plain portable SQL: the same text runs
//! on SQLite and PostgreSQL.

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
];

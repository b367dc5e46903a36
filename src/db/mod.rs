//! The database connection and the write discipline both backends share.
//!
//! SQLite admits one writer at a time. Writes go through [`Db::begin_write`], which on
//! SQLite first takes an in-process async lock (a fair FIFO handoff instead of
//! SQLite's sleeping busy handler) and then opens a `BEGIN IMMEDIATE` transaction
//! (which also serialises against other processes such as `tendero ingest`). On
//! PostgreSQL it is a plain transaction and row locks do the work.

pub mod entities;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::{Expr, Func, LikeExpr, SimpleExpr};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, PaginatorTrait, QuerySelect, Select,
    SqlErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tendero_migration::{Migrator, MigratorTrait};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A pooled connection to SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    sqlite_writer: Option<Arc<Mutex<()>>>,
}

/// A write transaction; on SQLite it also holds the process-wide writer lock.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _writer: Option<OwnedMutexGuard<()>>,
}

/// A job claimed by this node ([`Db::claim`]).
pub struct Claim(Option<DatabaseTransaction>);

impl Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

impl Db {
    /// Connects (creating a SQLite file and its folder when missing).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let folder = sqlite_file(url)
            .and_then(|path| std::path::Path::new(path).parent())
            .filter(|dir| !dir.as_os_str().is_empty());
        if let Some(dir) = folder {
            std::fs::create_dir_all(dir).map_err(|err| {
                DbErr::Custom(format!(
                    "creating the database folder {}: {err}",
                    dir.display()
                ))
            })?;
        }
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections.max(1))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            // A ping on every checkout doubles the round trips of a point read; ping only
            // connections idle long enough to have been dropped by a server or proxy.
            .test_before_acquire_if_idle_for(Duration::from_secs(30))
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        let conn = Database::connect(options).await?;
        let sqlite_writer =
            (conn.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Self {
            conn,
            sqlite_writer,
        })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.conn, None).await
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Opens a transaction that will write.
    pub async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        let writer = match &self.sqlite_writer {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let txn = self
            .conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        Ok(WriteTxn {
            txn,
            _writer: writer,
        })
    }

    /// Claims a job that one node at a time may run (a training): with PostgreSQL, a
    /// transaction holding the advisory lock `key` until it ends, or `None` when
    /// another node holds it; with SQLite (one node) the claim is always granted.
    pub async fn claim(&self, key: i64) -> Result<Option<Claim>, DbErr> {
        if self.backend() != DbBackend::Postgres {
            return Ok(Some(Claim(None)));
        }
        let txn = self.conn.begin().await?;
        let row = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT pg_try_advisory_xact_lock({key}) AS locked"),
            ))
            .await?;
        let locked: bool = row
            .map(|r| r.try_get("", "locked"))
            .transpose()?
            .unwrap_or(false);
        Ok(locked.then_some(Claim(Some(txn))))
    }

    /// The write transaction a claimed job stores its result in: the claim's own
    /// (its commit ends the claim), or a new one.
    pub async fn write_claimed(&self, claim: Claim) -> Result<WriteTxn, DbErr> {
        match claim.0 {
            Some(txn) => Ok(WriteTxn { txn, _writer: None }),
            None => self.begin_write().await,
        }
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    /// The rows of one page of `query`, in the order `order` puts them, and how
    /// many rows the whole query matches.
    pub async fn page_of<E>(
        &self,
        query: Select<E>,
        order: impl FnOnce(Select<E>) -> Select<E>,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<E::Model>, u64), DbErr>
    where
        E: EntityTrait,
        E::Model: Send + Sync,
    {
        let total = query.clone().count(&self.conn).await?;
        let rows = order(query)
            .limit(limit)
            .offset(offset)
            .all(&self.conn)
            .await?;
        Ok((rows, total))
    }
}

/// A write that a unique constraint may refuse.
#[derive(Debug)]
pub enum Unique<T> {
    Written(T),
    /// Another row already holds the unique value; nothing was written.
    Taken,
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Commits a write that may break a unique constraint, reporting that as
/// [`Unique::Taken`] (the transaction is dropped, so nothing is written).
pub async fn commit_unique<T>(
    txn: WriteTxn,
    written: Result<T, DbErr>,
) -> Result<Unique<T>, DbErr> {
    match written {
        Ok(value) => {
            txn.commit().await?;
            Ok(Unique::Written(value))
        }
        Err(err) if is_unique_violation(&err) => Ok(Unique::Taken),
        Err(err) => Err(err),
    }
}

/// `col LIKE '%needle%'` with `%`, `_` and `\` in the needle matched literally.
pub fn contains(expr: impl Into<SimpleExpr>, needle: &str) -> SimpleExpr {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    sea_orm::ExprTrait::like(
        Expr::expr(expr.into()),
        LikeExpr::new(format!("%{escaped}%")).escape('\\'),
    )
}

/// `LOWER(col) LIKE '%needle%'` (needle already lower-cased).
pub fn lower_contains(column: impl ColumnTrait, needle: &str) -> SimpleExpr {
    contains(Func::lower(column.into_expr()), needle)
}

/// The file path of a `sqlite:` URL, if it names a file.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_file("sqlite://data/t.db?mode=rwc"),
            Some("data/t.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x@y/z"), None);
    }
}

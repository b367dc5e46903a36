//! The snapshot full-text searches run on: a handle on the chunk table checked out at
//! one version, with the row address → key map of that version. LanceDB's full-text
//! search answers with row addresses; reading each hit's key from the data files
//! instead hands every search between threads a dozen times, which on an idle 2-core
//! machine costs more than the search itself.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::TryStreamExt;
use lancedb::arrow::arrow_array::cast::AsArray;
use lancedb::arrow::arrow_array::types::{Int64Type, UInt64Type};
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::{Connection, Table};

use super::column;

/// The current snapshot, re-pinned when the table moves on, one pinning at a time.
#[derive(Default)]
pub(super) struct Pins {
    current: RwLock<Option<Arc<Pinned>>>,
    pinning: tokio::sync::Mutex<()>,
}

/// The table as of one version, with the key of each row address in that version
/// (row addresses change when rows are rewritten, so the map is only valid with it).
pub(super) struct Pinned {
    pub version: u64,
    pub table: Table,
    pub keys: HashMap<u64, i64>,
}

impl Pins {
    /// The snapshot of table `name` at `version`, pinned anew (one scan of the keys)
    /// when the last one is of another version.
    pub async fn at(
        &self,
        db: &Connection,
        name: &str,
        version: u64,
    ) -> anyhow::Result<Arc<Pinned>> {
        let current = || {
            self.current
                .read()
                .expect("pinned lock")
                .as_ref()
                .filter(|p| p.version == version)
                .cloned()
        };
        if let Some(pinned) = current() {
            return Ok(pinned);
        }
        let _pinning = self.pinning.lock().await;
        // Another search may have pinned this version while this one waited.
        if let Some(pinned) = current() {
            return Ok(pinned);
        }
        let table = db.open_table(name).execute().await?;
        table.checkout(version).await?;
        let mut stream = table
            .query()
            .select(Select::columns(&["key"]))
            .with_row_id()
            .execute()
            .await?;
        let mut keys = HashMap::new();
        while let Some(batch) = stream.try_next().await? {
            let key = column(&batch, "key")?.as_primitive::<Int64Type>();
            let rows = column(&batch, "_rowid")?.as_primitive::<UInt64Type>();
            for row in 0..batch.num_rows() {
                keys.insert(rows.value(row), key.value(row));
            }
        }
        let pinned = Arc::new(Pinned {
            version,
            table,
            keys,
        });
        *self.current.write().expect("pinned lock") = Some(pinned.clone());
        Ok(pinned)
    }
}

//! The `export` section: where saved reports go and how large one may be.

use std::path::PathBuf;

use serde::Deserialize;

/// Read by [`crate::export`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExportSettings {
    /// Where saved reports (`guardar=true`, `tendero export`) are written.
    pub exports_dir: PathBuf,
    /// Most rows one export may contain; larger ones are refused before they start.
    pub export_max_rows: u64,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            exports_dir: PathBuf::from("exports"),
            export_max_rows: 5_000_000,
        }
    }
}

//! Saved reports under the exports folder: written atomically, listed, and served by
//! name, with names that cannot leave the folder.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::ExportError;
use super::ExportRequest;
use crate::error::FieldError;

/// A report being written under a temporary name; dropped unfinished (an error, a
/// cancelled task, a shutdown), it removes its temporary file.
pub struct PendingFile {
    pub(super) file: tokio::fs::File,
    temporary: PathBuf,
    path: PathBuf,
    name: String,
    done: bool,
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

impl PendingFile {
    /// Opens `.{name}.part` in `dir` for a report named after its kind and the time.
    pub async fn create(dir: &Path, request: &ExportRequest) -> std::io::Result<Self> {
        tokio::fs::create_dir_all(dir).await?;
        let mut suffix = [0u8; 3];
        rand::rng().fill_bytes(&mut suffix);
        let name = format!(
            "{}-{}-{:02x}{:02x}{:02x}.{}",
            request.report.slug(),
            Utc::now().format("%Y%m%dT%H%M%SZ"),
            suffix[0],
            suffix[1],
            suffix[2],
            request.format.extension()
        );
        Self::create_named(dir, name).await
    }

    /// Opens a pending file that will become `path` (for `tendero export --salida`).
    pub async fn create_at(path: &Path) -> std::io::Result<Self> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| std::io::Error::other(format!("{} is not a file name", path.display())))?
            .to_owned();
        Self::create_named(dir, name).await
    }

    async fn create_named(dir: &Path, name: String) -> std::io::Result<Self> {
        let temporary = dir.join(format!(".{name}.part"));
        let file = tokio::fs::File::create(&temporary).await?;
        Ok(Self {
            file,
            temporary,
            path: dir.join(&name),
            name,
            done: false,
        })
    }

    /// Flushes, syncs and renames the file into place; returns its name.
    pub async fn commit(mut self) -> std::io::Result<String> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        tokio::fs::rename(&self.temporary, &self.path).await?;
        self.done = true;
        Ok(std::mem::take(&mut self.name))
    }

    /// Removes the partial file.
    pub async fn discard(mut self) {
        self.done = true;
        if let Err(err) = tokio::fs::remove_file(&self.temporary).await {
            tracing::warn!(error = %err, path = %self.temporary.display(), "could not remove a partial export");
        }
    }
}

/// A saved report as `GET /api/exportar/archivos` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SavedFile {
    pub nombre: String,
    pub bytes: u64,
    pub modificado: DateTime<Utc>,
}

fn internal(err: std::io::Error) -> ExportError {
    ExportError::Internal(err.into())
}

/// Saved reports, newest first (partial files are not listed).
pub(super) async fn list(dir: &Path) -> Result<Vec<SavedFile>, ExportError> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(internal(err)),
    };
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(internal)? {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if check_name(&name).is_err() {
            continue;
        }
        let meta = entry.metadata().await.map_err(internal)?;
        if !meta.is_file() {
            continue;
        }
        let modificado = meta
            .modified()
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        files.push(SavedFile {
            nombre: name,
            bytes: meta.len(),
            modificado,
        });
    }
    files.sort_by(|a, b| {
        b.modificado
            .cmp(&a.modificado)
            .then(b.nombre.cmp(&a.nombre))
    });
    Ok(files)
}

/// Accepts only plain report names: no folders, no hidden or partial files.
pub fn check_name(name: &str) -> Result<(), FieldError> {
    let plain = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let known = [".csv", ".json", ".jsonl"]
        .iter()
        .any(|ext| name.ends_with(ext));
    if plain && known {
        Ok(())
    } else {
        Err(FieldError::new(
            "nombre",
            "no es el nombre de un reporte guardado",
        ))
    }
}

/// Opens a saved report by name: (file, size, content type).
pub(super) async fn open(
    dir: &Path,
    name: &str,
) -> Result<(tokio::fs::File, u64, &'static str), ExportError> {
    check_name(name)?;
    let path = dir.join(name);
    let meta = match tokio::fs::symlink_metadata(&path).await {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Err(ExportError::NotFound),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(ExportError::NotFound);
        }
        Err(err) => return Err(internal(err)),
    };
    let content_type = if name.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else if name.ends_with(".jsonl") {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let file = tokio::fs::File::open(&path).await.map_err(internal)?;
    Ok((file, meta.len(), content_type))
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn only_plain_report_names_pass() {
        assert!(check_name("pedidos-20261121T063000Z-a1b2c3.csv").is_ok());
        assert!(check_name("clientes.jsonl").is_ok());
        for bad in [
            "../etc/passwd",
            "..",
            "a/../../b.csv",
            "/etc/passwd.csv",
            ".pedidos.csv.part",
            "pedidos.csv.part",
            "ok.csv\0",
            "con espacio.csv",
            "script.sh",
            "..%2Fx.csv",
            "",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}

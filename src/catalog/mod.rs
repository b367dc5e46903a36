//! The catalog as search sees it: reading product files and shop documents
//! ([`source`], [`docs`]), loading them into the database ([`ingest`]), the demo shop
//! ([`demo`]), and keeping the search index in step with the database ([`sync`]).

pub mod demo;
pub mod docs;
pub mod ingest;
pub mod progress;
pub mod source;
pub mod sync;

/// Reports long steps (a progress bar in `tendero-ingest`, nothing in the server).
pub trait Progress: Send + Sync {
    /// A step of `total` units begins.
    fn start(&self, step: &str, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// The step is over.
    fn finish(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _step: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}

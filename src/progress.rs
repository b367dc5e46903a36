//! Progress of long steps (indexing a catalog, evaluating search): reported to a
//! terminal bar by the command line, to nothing in the server.

/// Reports long steps.
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

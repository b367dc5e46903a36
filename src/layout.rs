//! Trained models as bytes, to store them in the database and load them on every
//! node: little-endian numbers in a fixed order after a magic tag that names the
//! layout and its version. Each model writes its own layout with [`Writer`] and
//! reads it back with [`Reader`], which refuses truncated or oversized data.

/// Bytes that are not a model of the expected layout.
#[derive(Debug, thiserror::Error)]
#[error("stored models are unreadable: {0}")]
pub struct Unreadable(pub &'static str);

/// Writes numbers in the stored layout.
pub struct Writer(Vec<u8>);

impl Writer {
    /// Writes into `buffer` (its capacity is kept).
    pub fn new(buffer: Vec<u8>) -> Self {
        Self(buffer)
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A count (of entries, or of a string's bytes).
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("fewer than 2^32 entries"));
    }
    /// A string: its length, then its bytes.
    pub fn str(&mut self, v: &str) {
        self.len(v.len());
        self.bytes(v.as_bytes());
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Reads what a [`Writer`] wrote, in the same order.
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.0.len()
    }
    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Unreadable> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(Unreadable("truncated"))?;
        self.0 = rest;
        Ok(head)
    }
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Unreadable> {
        Ok(self.bytes(N)?.try_into().expect("N bytes"))
    }
    pub fn u32(&mut self) -> Result<u32, Unreadable> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub fn i64(&mut self) -> Result<i64, Unreadable> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    pub fn f32(&mut self) -> Result<f32, Unreadable> {
        Ok(f32::from_le_bytes(self.take()?))
    }
    pub fn f64(&mut self) -> Result<f64, Unreadable> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    /// A count, checked against what is left (each entry takes at least `min` bytes).
    pub fn len(&mut self, min: usize) -> Result<usize, Unreadable> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.0.len() {
            return Err(Unreadable("count beyond the data"));
        }
        Ok(n)
    }
    /// What [`Writer::str`] wrote.
    pub fn str(&mut self) -> Result<&'a str, Unreadable> {
        let n = self.len(1)?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| Unreadable("text that is not UTF-8"))
    }
}

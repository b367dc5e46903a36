//! Purchases read from files, for offline evaluation: an orders file in the layout of
//! the UCI Online Retail set (`InvoiceNo, StockCode, Description, Quantity,
//! InvoiceDate, UnitPrice, CustomerID, Country`; `.csv` or `.csv.gz`), or `user item`
//! lines in time order (the layout sequential-recommendation papers publish).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use chrono::NaiveDateTime;

use super::data::Purchase;

/// A file that could not be read, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {message}")]
    Line {
        path: String,
        line: u64,
        message: String,
    },
    #[error(
        "{path}: no column {column} in the header (an Online Retail orders file has InvoiceNo, StockCode, Quantity, InvoiceDate, CustomerID)"
    )]
    Column { path: String, column: &'static str },
}

/// Gives string keys dense numbers, so the models can key products and customers by i64.
#[derive(Default)]
struct Keys(HashMap<String, i64>);

impl Keys {
    fn id(&mut self, key: &str) -> i64 {
        let next = self.0.len() as i64;
        *self.0.entry(key.to_owned()).or_insert(next)
    }

    /// For every id, its key's rank in string order.
    fn ranks(&self) -> Vec<i64> {
        let mut keys: Vec<(&String, i64)> = self.0.iter().map(|(k, &id)| (k, id)).collect();
        keys.sort();
        let mut rank = vec![0; keys.len()];
        for (r, (_, id)) in keys.into_iter().enumerate() {
            rank[id as usize] = r as i64;
        }
        rank
    }
}

fn open(path: &Path) -> Result<Box<dyn Read>, FileError> {
    let file = File::open(path).map_err(|source| FileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// The purchases of an orders file, kept as the temporal protocol says: a customer, a
/// quantity above 0, not a cancellation (`C…` invoice), a product code starting with
/// five digits (postage, fees and manual lines are not products).
pub fn read_orders(path: &Path) -> Result<Vec<Purchase>, FileError> {
    let shown = path.display().to_string();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(open(path)?);
    let headers = reader
        .headers()
        .map_err(|e| FileError::Line {
            path: shown.clone(),
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or(FileError::Column {
                path: shown.clone(),
                column: name,
            })
    };
    let (invoice, code, quantity, date, customer) = (
        column("InvoiceNo")?,
        column("StockCode")?,
        column("Quantity")?,
        column("InvoiceDate")?,
        column("CustomerID")?,
    );
    let (mut products, mut orders) = (Keys::default(), Keys::default());
    let mut purchases = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index as u64 + 2;
        let record = record.map_err(|e| FileError::Line {
            path: shown.clone(),
            line,
            message: e.to_string(),
        })?;
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let (invoice, code, customer) = (field(invoice), field(code), field(customer));
        let bad = |message: String| FileError::Line {
            path: shown.clone(),
            line,
            message,
        };
        if customer.is_empty()
            || invoice.starts_with('C')
            || code.len() < 5
            || !code.as_bytes()[..5].iter().all(u8::is_ascii_digit)
        {
            continue;
        }
        let units: f64 = field(quantity)
            .parse()
            .map_err(|_| bad(format!("Quantity {:?} is not a number", field(quantity))))?;
        if units <= 0.0 {
            continue;
        }
        let customer: f64 = customer
            .parse()
            .map_err(|_| bad(format!("CustomerID {customer:?} is not a number")))?;
        let at = NaiveDateTime::parse_from_str(field(date), "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(field(date), "%Y-%m-%d %H:%M"))
            .map_err(|_| {
                bad(format!(
                    "InvoiceDate {:?} is not YYYY-MM-DD HH:MM:SS",
                    field(date)
                ))
            })?;
        purchases.push(Purchase {
            customer: customer as i64,
            product: products.id(code),
            order: orders.id(invoice),
            at: at.and_utc().timestamp(),
        });
    }
    // Products and orders numbered in the order of their codes, so that lines of one
    // moment sort by invoice and product code, as the published protocol's anchors
    // were computed (it decides which product of a last order is "the last one").
    let (product_rank, order_rank) = (products.ranks(), orders.ranks());
    for p in &mut purchases {
        p.product = product_rank[p.product as usize];
        p.order = order_rank[p.order as usize];
    }
    Ok(purchases)
}

/// `user item` lines (whitespace-separated, in time order per user): each user's items
/// as a sequence.
pub fn read_sequences(path: &Path) -> Result<Vec<Vec<i64>>, FileError> {
    let shown = path.display().to_string();
    let (mut users, mut items) = (Keys::default(), Keys::default());
    let mut sequences: Vec<Vec<i64>> = Vec::new();
    for (index, line) in BufReader::new(open(path)?).lines().enumerate() {
        let line = line.map_err(|source| FileError::Io {
            path: shown.clone(),
            source,
        })?;
        let mut fields = line.split_whitespace();
        let (Some(user), Some(item)) = (fields.next(), fields.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(FileError::Line {
                path: shown,
                line: index as u64 + 1,
                message: "expected `user item`".into(),
            });
        };
        let user = users.id(user) as usize;
        if user == sequences.len() {
            sequences.push(Vec::new());
        }
        sequences[user].push(items.id(item));
    }
    Ok(sequences)
}

/// The sequences the leave-one-out protocol reads from an orders file: each customer's
/// products in time order (a product once per order), customers with at least
/// `min_length` of them.
pub fn sequences_of(purchases: &[Purchase], min_length: usize) -> Vec<Vec<i64>> {
    let data = super::data::Dataset::new(purchases, &[]);
    data.histories
        .iter()
        .filter(|h| h.len() >= min_length)
        .map(|h| h.iter().map(|b| data.products[b.item as usize]).collect())
        .collect()
}

//! Row encoders: RFC 4180 CSV (optionally for Excel in Spanish locales), a JSON array,
//! and JSON Lines. They append to a byte buffer that the exporter flushes in chunks.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::shop::types::Money;

/// One value of one row.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Int(i64),
    Text(&'a str),
    Money(Money),
    Bool(bool),
    Time(DateTime<Utc>),
    Json(&'a Value),
    Null,
}

impl<'a> From<Option<&'a str>> for Cell<'a> {
    fn from(value: Option<&'a str>) -> Self {
        value.map_or(Cell::Null, Cell::Text)
    }
}

impl From<Option<DateTime<Utc>>> for Cell<'_> {
    fn from(value: Option<DateTime<Utc>>) -> Self {
        value.map_or(Cell::Null, Cell::Time)
    }
}

/// A row that can hand out its cells by column index.
pub trait Record {
    fn cell(&self, column: usize) -> Cell<'_>;
}

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv { excel: bool },
    Json,
    JsonLines,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv { .. } => "csv",
            ExportFormat::Json => "json",
            ExportFormat::JsonLines => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv { .. } => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
            ExportFormat::JsonLines => "application/x-ndjson",
        }
    }
}

/// Instants as ISO 8601 in UTC, e.g. `2026-01-31T10:00:00.123456Z`.
pub fn iso8601(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Writes rows of the selected columns in one format.
pub struct Encoder {
    format: ExportFormat,
    names: Vec<&'static str>,
    indexes: Vec<usize>,
    rows: u64,
    scratch: String,
}

impl Encoder {
    /// `columns` are (name, index into the record) pairs, in output order.
    pub fn new(format: ExportFormat, columns: &[(&'static str, usize)]) -> Self {
        Self {
            format,
            names: columns.iter().map(|(name, _)| *name).collect(),
            indexes: columns.iter().map(|(_, index)| *index).collect(),
            rows: 0,
            scratch: String::new(),
        }
    }

    pub fn begin(&mut self, out: &mut Vec<u8>) {
        match self.format {
            ExportFormat::Csv { excel } => {
                if excel {
                    out.extend_from_slice("\u{feff}".as_bytes());
                }
                for (i, name) in self.names.iter().enumerate() {
                    if i > 0 {
                        out.push(self.separator());
                    }
                    out.extend_from_slice(name.as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            ExportFormat::Json => out.push(b'['),
            ExportFormat::JsonLines => {}
        }
    }

    pub fn row(&mut self, out: &mut Vec<u8>, record: &impl Record) {
        match self.format {
            ExportFormat::Csv { excel } => {
                let separator = self.separator();
                for (i, index) in self.indexes.iter().enumerate() {
                    if i > 0 {
                        out.push(separator);
                    }
                    csv_cell(out, &mut self.scratch, record.cell(*index), excel);
                }
                out.extend_from_slice(b"\r\n");
            }
            ExportFormat::Json | ExportFormat::JsonLines => {
                if self.format == ExportFormat::Json {
                    out.extend_from_slice(if self.rows == 0 { b"\n" } else { b",\n" });
                }
                out.push(b'{');
                for (i, (name, index)) in self.names.iter().zip(&self.indexes).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_string(out, name);
                    out.push(b':');
                    json_cell(out, record.cell(*index));
                }
                out.push(b'}');
                if self.format == ExportFormat::JsonLines {
                    out.push(b'\n');
                }
            }
        }
        self.rows += 1;
    }

    pub fn end(&mut self, out: &mut Vec<u8>) {
        if self.format == ExportFormat::Json {
            out.extend_from_slice(if self.rows == 0 { b"]\n" } else { b"\n]\n" });
        }
    }

    fn separator(&self) -> u8 {
        match self.format {
            ExportFormat::Csv { excel: true } => b';',
            _ => b',',
        }
    }
}

/// Writes one CSV field: formulas defused, quoted only when needed (RFC 4180).
fn csv_cell(out: &mut Vec<u8>, scratch: &mut String, cell: Cell<'_>, excel: bool) {
    use std::fmt::Write;
    scratch.clear();
    let text: &str = match cell {
        Cell::Null => return,
        Cell::Int(n) => {
            let _ = write!(scratch, "{n}");
            scratch.as_str()
        }
        Cell::Bool(b) => {
            if b {
                "true"
            } else {
                "false"
            }
        }
        Cell::Money(m) => {
            let _ = write!(scratch, "{m}");
            if excel {
                *scratch = scratch.replace('.', ",");
            }
            scratch.as_str()
        }
        Cell::Time(t) => {
            *scratch = iso8601(t);
            scratch.as_str()
        }
        Cell::Json(v) => {
            *scratch = v.to_string();
            scratch.as_str()
        }
        Cell::Text(t) => {
            // Spreadsheets run cells starting with these as formulas; a leading
            // apostrophe makes them plain text.
            if t.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                scratch.push('\'');
                scratch.push_str(t);
                scratch.as_str()
            } else {
                t
            }
        }
    };
    let separator = if excel { b';' } else { b',' };
    let needs_quotes = text
        .bytes()
        .any(|b| b == separator || b == b'"' || b == b'\n' || b == b'\r');
    if needs_quotes {
        out.push(b'"');
        for byte in text.bytes() {
            if byte == b'"' {
                out.push(b'"');
            }
            out.push(byte);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

fn json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing JSON to a Vec cannot fail");
}

fn json_cell(out: &mut Vec<u8>, cell: Cell<'_>) {
    use std::io::Write;
    match cell {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Cell::Money(m) => {
            let _ = write!(out, "\"{m}\"");
        }
        Cell::Time(t) => json_string(out, &iso8601(t)),
        Cell::Text(t) => json_string(out, t),
        Cell::Json(v) => {
            serde_json::to_writer(&mut *out, v).expect("writing JSON to a Vec cannot fail")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row(Vec<Cell<'static>>);

    impl Record for Row {
        fn cell(&self, column: usize) -> Cell<'_> {
            self.0[column]
        }
    }

    fn encode(format: ExportFormat, rows: &[Row]) -> String {
        let columns = [("a", 0), ("b", 1)];
        let mut encoder = Encoder::new(format, &columns);
        let mut out = Vec::new();
        encoder.begin(&mut out);
        for row in rows {
            encoder.row(&mut out, row);
        }
        encoder.end(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_only_what_needs_it_and_defuses_formulas() {
        let rows = [
            Row(vec![Cell::Text("simple"), Cell::Text("con, coma")]),
            Row(vec![Cell::Text("dice \"hola\""), Cell::Text("dos\nlíneas")]),
            Row(vec![Cell::Text("=SUMA(A1)"), Cell::Text("-2+3")]),
            Row(vec![Cell::Money(Money::from_cents(1999)), Cell::Null]),
        ];
        assert_eq!(
            encode(ExportFormat::Csv { excel: false }, &rows),
            "a,b\r\nsimple,\"con, coma\"\r\n\"dice \"\"hola\"\"\",\"dos\nlíneas\"\r\n'=SUMA(A1),'-2+3\r\n19.99,\r\n"
        );
    }

    #[test]
    fn excel_csv_has_bom_semicolons_and_decimal_commas() {
        let rows = [Row(vec![
            Cell::Money(Money::from_cents(1999)),
            Cell::Text("a;b"),
        ])];
        assert_eq!(
            encode(ExportFormat::Csv { excel: true }, &rows),
            "\u{feff}a;b\r\n19,99;\"a;b\"\r\n"
        );
    }

    #[test]
    fn json_and_json_lines() {
        let rows = [
            Row(vec![Cell::Int(1), Cell::Text("ñ \"x\"")]),
            Row(vec![Cell::Bool(true), Cell::Money(Money::from_cents(5))]),
        ];
        let json = encode(ExportFormat::Json, &rows);
        let parsed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([{"a": 1, "b": "ñ \"x\""}, {"a": true, "b": "0.05"}])
        );
        assert_eq!(encode(ExportFormat::Json, &[]), "[]\n");
        let lines = encode(ExportFormat::JsonLines, &rows);
        assert_eq!(lines.lines().count(), 2);
        assert_eq!(encode(ExportFormat::JsonLines, &[]), "");
    }
}

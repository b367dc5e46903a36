//! Reading a product file (CSV, JSON array or JSON Lines) into validated rows.
//!
//! Recognised columns: `sku, nombre, descripcion, categoria, precio, stock, activo`
//! (and their English names); any other column becomes an attribute. Every refused
//! row is reported with its file, line and column and the reason, the way a shop
//! owner can fix it in a spreadsheet.

use std::fmt;
use std::path::Path;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::shop::productos::{parse_attributes, parse_category};
use crate::shop::types::{FieldError, Money, Sku, parse_name, parse_stock, parse_text};

/// A product file's format, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Csv,
    Json,
    Jsonl,
}

impl SourceFormat {
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(SourceFormat::Csv),
            "json" => Some(SourceFormat::Json),
            "jsonl" | "ndjson" => Some(SourceFormat::Jsonl),
            _ => None,
        }
    }
}

/// One valid product row.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRow {
    pub line: u64,
    pub sku: String,
    pub nombre: String,
    pub descripcion: Option<String>,
    pub categoria: String,
    pub precio_centavos: i64,
    pub stock: i64,
    pub atributos: Value,
    pub activo: bool,
}

/// Why a row was refused, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    /// The column (CSV: `3 (precio)`; JSON: the key), or `-` for the row as a whole.
    pub column: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: columna {}: {}",
            self.file, self.line, self.column, self.reason
        )
    }
}

/// Rows that passed and rows that did not, in file order.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<ProductRow>,
    pub errors: Vec<RowError>,
}

/// The canonical name of a recognised column.
fn canonical(column: &str) -> Option<&'static str> {
    Some(match column.trim().to_lowercase().as_str() {
        "sku" | "id" | "codigo" | "código" | "product_id" => "sku",
        "nombre" | "name" | "title" | "titulo" | "título" => "nombre",
        "descripcion" | "descripción" | "description" => "descripcion",
        "categoria" | "categoría" | "category" => "categoria",
        "precio" | "price" => "precio",
        "stock" | "existencias" | "inventario" | "quantity" => "stock",
        "activo" | "active" => "activo",
        _ => return None,
    })
}

/// Parses a whole file held in memory.
pub fn parse(file: &str, format: SourceFormat, text: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parsed = Parsed::default();
    let mut error = |line: u64, column: &str, reason: String| RowError {
        file: file.to_owned(),
        line,
        column: column.to_owned(),
        reason,
    };
    match format {
        SourceFormat::Csv => parse_csv(text, &mut parsed, &mut error),
        SourceFormat::Jsonl => {
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let line_no = n as u64 + 1;
                match serde_json::from_str::<Value>(line) {
                    Ok(value) => push_object(value, line_no, &mut parsed, &mut error),
                    Err(err) => parsed.errors.push(error(
                        line_no,
                        &err.column().to_string(),
                        format!("JSON no válido: {err}"),
                    )),
                }
            }
        }
        SourceFormat::Json => match split_json_array(text) {
            Ok(elements) => {
                for (line_no, raw) in elements {
                    match serde_json::from_str::<Value>(raw) {
                        Ok(value) => push_object(value, line_no, &mut parsed, &mut error),
                        Err(err) => parsed.errors.push(error(
                            line_no + err.line() as u64 - 1,
                            &err.column().to_string(),
                            format!("JSON no válido: {err}"),
                        )),
                    }
                }
            }
            Err((line, reason)) => parsed.errors.push(error(line, "-", reason)),
        },
    }
    parsed
}

fn parse_csv(
    text: &str,
    parsed: &mut Parsed,
    error: &mut impl FnMut(u64, &str, String) -> RowError,
) {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(err) => {
            parsed
                .errors
                .push(error(1, "-", format!("cabecera ilegible: {err}")));
            return;
        }
    };
    let names: Vec<String> = headers.iter().map(|h| h.trim().to_owned()).collect();
    for required in ["sku", "nombre", "precio"] {
        if !names.iter().any(|n| canonical(n) == Some(required)) {
            parsed.errors.push(error(
                1,
                required,
                format!("falta la columna {required} en la cabecera"),
            ));
            return;
        }
    }
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                parsed
                    .errors
                    .push(error(line, "-", format!("fila ilegible: {err}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != names.len() {
            parsed.errors.push(error(
                line,
                "-",
                format!(
                    "tiene {} columnas y la cabecera {}",
                    record.len(),
                    names.len()
                ),
            ));
            continue;
        }
        let fields: Vec<(String, Value)> = names
            .iter()
            .zip(record.iter())
            .map(|(name, value)| (name.clone(), Value::String(value.to_owned())))
            .collect();
        let column_of = |field: &str| -> String {
            names
                .iter()
                .position(|n| canonical(n) == Some(field) || n == field)
                .map_or_else(|| field.to_owned(), |i| format!("{} ({})", i + 1, names[i]))
        };
        match build_row(line, fields) {
            Ok(row) => parsed.rows.push(row),
            Err(err) => parsed
                .errors
                .push(error(line, &column_of(err.field), err.message)),
        }
    }
}

fn push_object(
    value: Value,
    line: u64,
    parsed: &mut Parsed,
    error: &mut impl FnMut(u64, &str, String) -> RowError,
) {
    let Value::Object(map) = value else {
        parsed.errors.push(error(
            line,
            "-",
            "cada producto debe ser un objeto JSON".to_owned(),
        ));
        return;
    };
    match build_row(line, map.into_iter().collect()) {
        Ok(row) => parsed.rows.push(row),
        Err(err) => parsed.errors.push(error(line, err.field, err.message)),
    }
}

/// Validates one row given as (column, value) pairs.
fn build_row(line: u64, fields: Vec<(String, Value)>) -> Result<ProductRow, FieldError> {
    let mut known: Map<String, Value> = Map::new();
    let mut atributos: Map<String, Value> = Map::new();
    for (name, value) in fields {
        match canonical(&name) {
            Some(field) => {
                known.insert(field.to_owned(), value);
            }
            None => match value {
                Value::Null => {}
                Value::String(s) if s.trim().is_empty() => {}
                Value::String(s) => {
                    atributos.insert(name.trim().to_owned(), Value::String(s.trim().to_owned()));
                }
                other => {
                    atributos.insert(name.trim().to_owned(), other);
                }
            },
        }
    }
    let text = |field: &'static str| -> Option<String> {
        match known.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        }
    };
    let sku_raw = text("sku").ok_or_else(|| FieldError::new("sku", "falta el SKU"))?;
    let sku = Sku::parse("sku", &sku_raw)?.into_inner();
    let nombre = parse_name(
        "nombre",
        &text("nombre").ok_or_else(|| FieldError::new("nombre", "falta el nombre"))?,
        300,
    )?;
    let descripcion = parse_text("descripcion", text("descripcion").as_deref(), 10_000)?;
    let categoria = parse_category(
        text("categoria")
            .as_deref()
            .filter(|c| !c.trim().is_empty()),
    )?;
    let precio = parse_price(known.get("precio"))?;
    let stock = match known.get("stock") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| FieldError::new("stock", "debe ser un número entero"))?,
        Some(Value::String(s)) if s.trim().is_empty() => 0,
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| FieldError::new("stock", format!("«{s}» no es un número entero")))?,
        Some(_) => return Err(FieldError::new("stock", "debe ser un número entero")),
    };
    let stock = parse_stock("stock", stock)?;
    let activo = match known.get("activo") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => match s.trim().to_lowercase().as_str() {
            "" | "true" | "1" | "si" | "sí" | "yes" => true,
            "false" | "0" | "no" => false,
            other => {
                return Err(FieldError::new(
                    "activo",
                    format!("«{other}» no es sí/no (true/false)"),
                ));
            }
        },
        Some(_) => return Err(FieldError::new("activo", "debe ser true o false")),
    };
    let atributos = parse_attributes(Some(Value::Object(atributos)))?;
    Ok(ProductRow {
        line,
        sku,
        nombre,
        descripcion,
        categoria,
        precio_centavos: precio.cents(),
        stock,
        atributos,
        activo,
    })
}

/// A price as written in a spreadsheet: `189900`, `189900.50`, `$ 1.299.900`,
/// `1.299.900,50` or a JSON number.
fn parse_price(raw: Option<&Value>) -> Result<Money, FieldError> {
    let text = match raw {
        None | Some(Value::Null) => return Err(FieldError::new("precio", "falta el precio")),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(FieldError::new("precio", "debe ser un número")),
    };
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '$')
        .collect();
    if cleaned.is_empty() {
        return Err(FieldError::new("precio", "falta el precio"));
    }
    let normalised = match (cleaned.matches('.').count(), cleaned.matches(',').count()) {
        // 1.299.900,50 (dots group thousands, the comma is decimal)
        (_, 1) if cleaned.contains('.') => cleaned.replace('.', "").replace(',', "."),
        // 1,299,900.50
        (1, _) if cleaned.contains(',') => cleaned.replace(',', ""),
        // 1.299.900
        (dots, 0) if dots > 1 => cleaned.replace('.', ""),
        // 45.900 or 45,900: one separator before exactly three digits groups thousands
        (1, 0) | (0, 1) if cleaned.len() - cleaned.rfind(['.', ',']).unwrap_or(0) == 4 => {
            cleaned.replace(['.', ','], "")
        }
        // 189900,50
        (0, 1) => cleaned.replace(',', "."),
        _ => cleaned.clone(),
    };
    let amount: Decimal = normalised
        .parse()
        .map_err(|_| FieldError::new("precio", format!("«{text}» no es un precio")))?;
    Money::parse("precio", amount)
}

/// Splits a JSON array into its elements' text, each with the line it starts on,
/// so that an element's error can name its line.
fn split_json_array(text: &str) -> Result<Vec<(u64, &str)>, (u64, String)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut line = 1u64;
    let skip_ws = |i: &mut usize, line: &mut u64| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            if bytes[*i] == b'\n' {
                *line += 1;
            }
            *i += 1;
        }
    };
    skip_ws(&mut i, &mut line);
    if bytes.get(i) != Some(&b'[') {
        return Err((
            line,
            "un archivo .json debe ser un arreglo [ … ] de productos".to_owned(),
        ));
    }
    i += 1;
    let mut elements = Vec::new();
    loop {
        skip_ws(&mut i, &mut line);
        match bytes.get(i) {
            None => return Err((line, "el arreglo JSON no se cierra con ]".to_owned())),
            Some(b']') => return Ok(elements),
            Some(b',') => {
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let (start, start_line) = (i, line);
        let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\n' {
                line += 1;
            }
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        if depth == 0 {
                            break;
                        }
                        depth -= 1;
                    }
                    b',' if depth == 0 => break,
                    _ => {}
                }
            }
            i += 1;
        }
        elements.push((start_line, text[start..i].trim_end()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_products_and_extra_columns_attributes() {
        let text = "sku,nombre,descripcion,categoria,precio,stock,color\n\
                    A-1,Camión de juguete,Volqueta roja,juguetes,\"45.900\",3,rojo\n\
                    A-2,Lámpara,,hogar,$ 129900,0,\n";
        let parsed = parse("p.csv", SourceFormat::Csv, text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.rows.len(), 2);
        let first = &parsed.rows[0];
        assert_eq!(first.line, 2);
        assert_eq!(first.precio_centavos, 4_590_000);
        assert_eq!(first.atributos["color"], "rojo");
        assert_eq!(parsed.rows[1].descripcion, None);
        assert_eq!(parsed.rows[1].precio_centavos, 12_990_000);
        assert!(parsed.rows[1].atributos.as_object().unwrap().is_empty());
    }

    #[test]
    fn bad_rows_name_file_line_and_column() {
        let text = "sku,nombre,precio,stock\nB-1,Silla,abc,2\nB-2,Mesa,10,-4\nB-3,Banco,10,1\n";
        let parsed = parse("malo.csv", SourceFormat::Csv, text);
        assert_eq!(parsed.rows.len(), 1);
        let shown: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert!(
            shown[0].starts_with("malo.csv:2: columna 3 (precio):"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("malo.csv:3: columna 4 (stock):"),
            "{shown:?}"
        );
    }

    #[test]
    fn json_and_jsonl_report_lines() {
        let json = "[\n  {\"sku\": \"J-1\", \"nombre\": \"Taza\", \"precio\": 9900},\n  \
                    {\"sku\": \"J-2\", \"nombre\": \"Plato\"}\n]";
        let parsed = parse("p.json", SourceFormat::Json, json);
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.errors[0].line, 3);
        assert_eq!(parsed.errors[0].column, "precio");
        let jsonl = "{\"sku\": \"L-1\", \"nombre\": \"Vaso\", \"precio\": \"1500\", \"marca\": \"X\"}\n\
                     {not json}\n";
        let parsed = parse("p.jsonl", SourceFormat::Jsonl, jsonl);
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0].atributos["marca"], "X");
        assert_eq!(parsed.errors[0].line, 2);
    }

    #[test]
    fn prices_in_local_notation() {
        let price = |s: &str| parse_price(Some(&Value::String(s.to_owned()))).map(Money::cents);
        assert_eq!(price("1.299.900"), Ok(129_990_000));
        assert_eq!(price("1.299.900,50"), Ok(129_990_050));
        assert_eq!(price("1,299,900.50"), Ok(129_990_050));
        assert_eq!(price("189900,5"), Ok(18_990_050));
        assert_eq!(price("45.900"), Ok(4_590_000));
        assert_eq!(price("12.50"), Ok(1_250));
        assert!(price("gratis").is_err());
        assert!(price("-5").is_err());
    }
}

//! Domain values parsed once at the edge; the services trust them afterwards.
//!
//! Money is held as an integer number of cents (`Money`), stored in BIGINT columns on
//! both SQLite and PostgreSQL: exact on both, cheap to add and compare, and shown to
//! clients as a decimal string with two places (`"129900.00"`).

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};

pub use crate::error::FieldError;

/// Control characters other than line breaks and tabs, which free text may hold.
fn has_control_chars(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// A person's or product's name: trimmed, 2 to `max` characters, no control characters.
pub fn parse_name(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    let name = raw.trim();
    let len = name.chars().count();
    if len < 2 {
        return Err(FieldError::new(field, "debe tener al menos 2 caracteres"));
    }
    if len > max {
        return Err(FieldError::new(
            field,
            format!("admite como máximo {max} caracteres"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(field, "contiene caracteres de control"));
    }
    Ok(name.to_owned())
}

/// Free text (descriptions, notes, addresses): trimmed, bounded, `None` when empty.
pub fn parse_text(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("admite como máximo {max} caracteres"),
        ));
    }
    if has_control_chars(text) {
        return Err(FieldError::new(field, "contiene caracteres de control"));
    }
    Ok(Some(text.to_owned()))
}

/// An email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && email_address::EmailAddress::parse_with_options(
                &email,
                email_address::Options::default().without_display_text(),
            )
            .is_ok()
            && email
                .rsplit_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if valid {
            Ok(Self(email))
        } else {
            Err(FieldError::new(field, "no es un correo electrónico válido"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A phone number: digits with optional `+`, spaces, dashes, dots and parentheses.
pub fn parse_phone(field: &'static str, raw: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(phone) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !allowed || !(7..=15).contains(&digits) || phone.len() > 32 {
        return Err(FieldError::new(
            field,
            "no es un teléfono válido (7 a 15 dígitos; se permiten +, espacios, guiones y paréntesis)",
        ));
    }
    Ok(Some(phone.to_owned()))
}

/// A stock-keeping unit: 1 to 64 characters of letters, digits and `-_./`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let sku = raw.trim();
        let valid = !sku.is_empty()
            && sku.len() <= 64
            && sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        if valid {
            Ok(Self(sku.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "un SKU tiene de 1 a 64 caracteres: letras, dígitos y - _ . /",
            ))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An exact amount of money in cents, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(i64);

impl Money {
    /// Largest amount accepted: one trillion (10^12) with cents.
    pub const MAX_CENTS: i64 = 100_000_000_000_000;

    pub const ZERO: Money = Money(0);

    pub fn from_cents(cents: i64) -> Self {
        Self(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// Parses a decimal amount: at least zero, at most two decimal places.
    pub fn parse(field: &'static str, amount: Decimal) -> Result<Self, FieldError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(FieldError::new(field, "no puede ser negativo"));
        }
        let normalized = amount.normalize();
        if normalized.scale() > 2 {
            return Err(FieldError::new(field, "admite como máximo 2 decimales"));
        }
        let cents = normalized
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|c| i64::try_from(c.trunc()).ok())
            .filter(|c| *c <= Self::MAX_CENTS)
            .ok_or_else(|| FieldError::new(field, "es demasiado grande"))?;
        Ok(Self(cents))
    }

    pub fn checked_mul(self, qty: i64) -> Option<Money> {
        self.0
            .checked_mul(qty)
            .filter(|c| *c <= Self::MAX_CENTS * 1000)
            .map(Money)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An amount of cents as Colombian pesos are written: `$1.299.000`, `$45.900,50`.
pub fn pesos(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let whole = (cents / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    match cents % 100 {
        0 => format!("{sign}${grouped}"),
        rest => format!("{sign}${grouped},{rest:02}"),
    }
}

/// Units in stock: zero to one billion.
pub fn parse_stock(field: &'static str, raw: i64) -> Result<i64, FieldError> {
    if raw < 0 {
        return Err(FieldError::new(field, "no puede ser negativo"));
    }
    if raw > 1_000_000_000 {
        return Err(FieldError::new(field, "es demasiado grande"));
    }
    Ok(raw)
}

/// Units of one order line: 1 to 10,000.
pub fn parse_quantity(field: &'static str, raw: i64) -> Result<i64, FieldError> {
    if !(1..=10_000).contains(&raw) {
        return Err(FieldError::new(field, "debe estar entre 1 y 10000"));
    }
    Ok(raw)
}

/// Which slice of a list to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u64,
    pub offset: u64,
}

impl Page {
    pub const MAX_LIMIT: u64 = 100;
    pub const DEFAULT_LIMIT: u64 = 20;

    pub fn parse(limit: Option<u64>, offset: Option<u64>) -> Result<Self, FieldError> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(FieldError::new(
                "limit",
                format!("debe estar entre 1 y {}", Self::MAX_LIMIT),
            ));
        }
        let offset = offset.unwrap_or(0);
        if offset > 10_000_000 {
            return Err(FieldError::new("offset", "es demasiado grande"));
        }
        Ok(Self { limit, offset })
    }

    /// This page's `items` out of `total`.
    pub fn of<T>(self, items: Vec<T>, total: u64) -> Paged<T> {
        Paged {
            items,
            total,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

/// One page of a list and the total matching rows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// A field that may be absent, explicitly `null` (clear it) or set, for PATCH bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Missing,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|v| match v {
            Some(v) => Patch::Value(v),
            None => Patch::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn pesos_are_grouped_with_dots() {
        assert_eq!(pesos(129_900_000), "$1.299.000");
        assert_eq!(pesos(4_590_050), "$45.900,50");
        assert_eq!(pesos(99_900), "$999");
        assert_eq!(pesos(0), "$0");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("nombre", "  Ana  ", 100).unwrap(), "Ana");
        assert!(parse_name("nombre", " A ", 100).is_err());
        assert!(parse_name("nombre", &"x".repeat(101), 100).is_err());
        assert_eq!(parse_name("nombre", "Ñu", 100).unwrap(), "Ñu");
        assert!(parse_name("nombre", "a\u{0}b", 100).is_err());
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("email", " Ana@Ejemplo.COM ").unwrap().as_str(),
            "ana@ejemplo.com"
        );
        for bad in ["", "ana", "ana@", "@x.co", "ana@localhost", "a b@x.co"] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn money_is_exact_and_bounded() {
        let m = Money::parse("precio", Decimal::from_str("19.99").unwrap()).unwrap();
        assert_eq!(m.cents(), 1999);
        assert_eq!(m.to_string(), "19.99");
        assert_eq!(
            Money::parse("precio", Decimal::from_str("129900").unwrap())
                .unwrap()
                .to_string(),
            "129900.00"
        );
        assert_eq!(
            Money::parse("precio", Decimal::from_str("1.500").unwrap())
                .unwrap()
                .cents(),
            150
        );
        assert!(Money::parse("precio", Decimal::from_str("-1").unwrap()).is_err());
        assert!(Money::parse("precio", Decimal::from_str("0.001").unwrap()).is_err());
        assert!(Money::parse("precio", Decimal::MAX).is_err());
        assert_eq!(
            serde_json::to_string(&Money::from_cents(5)).unwrap(),
            "\"0.05\""
        );
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(Page::parse(None, None).unwrap().limit, 20);
        assert!(Page::parse(Some(0), None).is_err());
        assert!(Page::parse(Some(101), None).is_err());
        assert_eq!(Page::parse(Some(100), Some(5)).unwrap().offset, 5);
    }

    #[test]
    fn patch_tells_null_from_missing() {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            telefono: Patch<String>,
        }
        let b: Body = serde_json::from_str("{}").unwrap();
        assert_eq!(b.telefono, Patch::Missing);
        let b: Body = serde_json::from_str(r#"{"telefono": null}"#).unwrap();
        assert_eq!(b.telefono, Patch::Null);
        let b: Body = serde_json::from_str(r#"{"telefono": "1"}"#).unwrap();
        assert_eq!(b.telefono, Patch::Value("1".into()));
    }

    #[test]
    fn skus_and_phones() {
        assert!(Sku::parse("sku", "ABC-123/x.y_z").is_ok());
        assert!(Sku::parse("sku", "a b").is_err());
        assert!(Sku::parse("sku", "'; DROP TABLE productos;--").is_err());
        assert_eq!(
            parse_phone("telefono", Some("+57 (300) 123-4567")).unwrap(),
            Some("+57 (300) 123-4567".into())
        );
        assert!(parse_phone("telefono", Some("abc")).is_err());
        assert_eq!(parse_phone("telefono", Some("  ")).unwrap(), None);
    }
}

//! The shop's own words, for hearing customers: the kinds of product it sells (the
//! first word of each name: "Taladro", "Licuadora"), then its categories, then the
//! other words of names and its brands, each group most used first. Speech gives them
//! to Whisper so that a spoken "taladros" is written as the catalog writes it; a
//! prompt holds a few dozen words (64 of the demo shop's), so in a large catalog the
//! kinds fill it.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Shop, ShopError};
use crate::db::entities::producto;
use crate::text::fold;

/// Words that say nothing of a product ("para", "con").
const FILLER: &[&str] = &[
    "para", "con", "sin", "tipo", "unidades", "piezas", "incluye", "cada", "desde", "hasta",
];

/// Shorter words are rarely what Whisper mishears, and numbers and model codes
/// are not words.
const MIN_LETTERS: usize = 4;

/// What the catalog looks like now: when it has not changed, neither has its
/// vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogVersion {
    products: u64,
    last_change: Option<chrono::DateTime<chrono::Utc>>,
}

impl Shop {
    /// Cheap to ask: the number of products and the last time one changed.
    pub async fn catalog_version(&self) -> Result<CatalogVersion, ShopError> {
        let conn = self.db.conn();
        let products = producto::Entity::find().count(conn).await?;
        let last_change = producto::Entity::find()
            .select_only()
            .column(producto::Column::UpdatedAt)
            .order_by_desc(producto::Column::UpdatedAt)
            .limit(1)
            .into_tuple::<chrono::DateTime<chrono::Utc>>()
            .one(conn)
            .await?;
        Ok(CatalogVersion {
            products,
            last_change,
        })
    }

    /// At most `max` words of the products on sale, most telling first (see the
    /// module's documentation).
    pub async fn vocabulary(&self, max: usize) -> Result<Vec<String>, ShopError> {
        let rows: Vec<(String, String, serde_json::Value)> = producto::Entity::find()
            .select_only()
            .columns([
                producto::Column::Nombre,
                producto::Column::Categoria,
                producto::Column::Atributos,
            ])
            .filter(producto::Column::EliminadoAt.is_null())
            .filter(producto::Column::Activo.eq(true))
            .into_tuple()
            .all(self.db.conn())
            .await?;
        Ok(rank_words(
            rows.iter().map(|(name, category, attributes)| Named {
                name,
                category,
                brand: attributes.get("marca").and_then(serde_json::Value::as_str),
            }),
            max,
        ))
    }
}

/// One product's words.
struct Named<'a> {
    name: &'a str,
    category: &'a str,
    brand: Option<&'a str>,
}

/// How many products use each word (once per product), keyed by its folded form,
/// with the way it is written most often.
#[derive(Default)]
struct Tally {
    products: usize,
    spellings: HashMap<String, usize>,
}

impl Tally {
    fn spelling(&self) -> &str {
        self.spellings
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(word, _)| word.as_str())
            .unwrap_or_default()
    }
}

fn rank_words<'a>(products: impl Iterator<Item = Named<'a>>, max: usize) -> Vec<String> {
    let mut kinds: HashMap<String, Tally> = HashMap::new();
    let mut categories: HashMap<String, Tally> = HashMap::new();
    let mut words: HashMap<String, Tally> = HashMap::new();
    for product in products {
        let category = product.category.trim();
        if !category.is_empty() {
            count(&mut categories, fold(category), category.to_owned());
        }
        let mut seen = Vec::new();
        let name = product
            .name
            .split(|c: char| !c.is_alphanumeric() && c != '+')
            .filter(|w| !w.is_empty())
            .enumerate();
        let brand = product.brand.map(|b| (usize::MAX, b));
        for (position, word) in name.chain(brand) {
            let word = word.trim_matches('+');
            if word.chars().count() < MIN_LETTERS || word.chars().any(|c| c.is_ascii_digit()) {
                continue;
            }
            let key = fold(word);
            if FILLER.contains(&key.as_str()) || seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            // A name starts with a capital ("Taladro"); other capitals are names.
            if position == 0 {
                count(&mut kinds, key, sentence_start(word));
            } else {
                count(&mut words, key, word.to_owned());
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for group in [kinds, categories, words] {
        for word in by_use(group) {
            if taken.insert(fold(&word)) {
                out.push(word);
            }
        }
    }
    out.truncate(max);
    out
}

fn count(tallies: &mut HashMap<String, Tally>, key: String, spelling: String) {
    let tally = tallies.entry(key).or_default();
    tally.products += 1;
    *tally.spellings.entry(spelling).or_default() += 1;
}

/// The first word of a name in lower case when only its capital says it starts
/// the name ("Taladro"), as written otherwise ("DeWalt", "JBL").
fn sentence_start(word: &str) -> String {
    let mut chars = word.chars();
    let rest_lower = chars.next().is_some() && chars.all(|c| !c.is_uppercase());
    if rest_lower {
        word.to_lowercase()
    } else {
        word.to_owned()
    }
}

/// The words, most used first (ties alphabetically by folded form).
fn by_use(tallies: HashMap<String, Tally>) -> Vec<String> {
    let mut ranked: Vec<(String, Tally)> = tallies.into_iter().collect();
    ranked.sort_by(|a, b| b.1.products.cmp(&a.1.products).then_with(|| a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .map(|(_, tally)| tally.spelling().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Named, rank_words};

    fn named<'a>(name: &'a str, category: &'a str, brand: Option<&'a str>) -> Named<'a> {
        Named {
            name,
            category,
            brand,
        }
    }

    #[test]
    fn kinds_of_product_first_then_categories_then_other_words() {
        let products = [
            named(
                "Taladro percutor inalámbrico 20 V con 2 baterías",
                "ferretería",
                Some("DeWalt"),
            ),
            named(
                "Taladro percutor alámbrico 650 W",
                "ferretería",
                Some("Black+Decker"),
            ),
            named("Martillo de uña 16 oz", "ferretería", Some("Stanley")),
            named("Audífonos inalámbricos Sony WH-CH520", "tecnología", None),
        ];
        let words = rank_words(products.into_iter(), 100);
        // Two products are "Taladro": the kind most sold first.
        assert_eq!(&words[..3], ["taladro", "audífonos", "martillo"]);
        assert_eq!(&words[3..5], ["ferretería", "tecnología"]);
        // Of the other words, "percutor" is in two names.
        assert_eq!(words[5], "percutor");
        for expected in ["martillo", "DeWalt", "Black+Decker", "Sony", "inalámbrico"] {
            assert!(words.iter().any(|w| w == expected), "{expected}: {words:?}");
        }
        // Numbers, codes, short and filler words are not vocabulary.
        for absent in ["20", "con", "uña", "WH-CH520", "CH520", "650"] {
            assert!(!words.iter().any(|w| w == absent), "{absent}: {words:?}");
        }
        // Each word once, whatever its case or accents.
        let folded: std::collections::HashSet<String> =
            words.iter().map(|w| crate::text::fold(w)).collect();
        assert_eq!(folded.len(), words.len(), "{words:?}");
        assert_eq!(rank_words(products_again().into_iter(), 3).len(), 3);
    }

    fn products_again() -> Vec<Named<'static>> {
        vec![
            named("Licuadora Oster vaso de vidrio", "cocina", Some("Oster")),
            named("Olla arrocera Oster", "cocina", Some("Oster")),
        ]
    }
}

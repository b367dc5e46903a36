//! Purchases as the models read them: customers and products renumbered densely, each
//! customer's history in time order, each order's distinct products.
//!
//! Both sources of purchases (the shop's `pedidos` and an orders file given to
//! `tendero eval recomendaciones`) become a list of [`Purchase`]s and then one
//! [`Dataset`]; the models never see a database id, only dense indices.

use std::collections::HashMap;

/// One product bought by one customer in one order, at a time in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purchase {
    pub customer: i64,
    pub product: i64,
    pub order: i64,
    pub at: i64,
}

/// One line of a customer's history: a product (dense index) bought at a time, in an
/// order (dense index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bought {
    pub item: u32,
    pub order: u32,
    pub at: i64,
}

/// Purchases renumbered: `products[i]` is item `i`'s id, `customers[u]` customer `u`'s.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub products: Vec<i64>,
    pub customers: Vec<i64>,
    /// Per customer, in time order (ties by order, then item); one line per product
    /// and order (quantities do not count twice).
    pub histories: Vec<Vec<Bought>>,
    /// Per order, its distinct items.
    pub baskets: Vec<Vec<u32>>,
    /// The latest purchase time, the "now" that recency is measured from.
    pub now: i64,
    item_of: HashMap<i64, u32>,
    customer_of: HashMap<i64, u32>,
}

impl Dataset {
    /// Builds the dataset from purchases in any order; `products` (if given) fixes the
    /// item numbering first, so that items nobody bought still get an index.
    pub fn new(purchases: &[Purchase], products: &[i64]) -> Self {
        let mut data = Dataset::default();
        for &product in products {
            data.intern_item(product);
        }
        let mut sorted: Vec<&Purchase> = purchases.iter().collect();
        sorted.sort_by_key(|p| (p.at, p.order, p.product));
        let mut order_of: HashMap<i64, u32> = HashMap::new();
        for purchase in sorted {
            let item = data.intern_item(purchase.product);
            let customer = match data.customer_of.get(&purchase.customer) {
                Some(&u) => u,
                None => {
                    let u = data.customers.len() as u32;
                    data.customers.push(purchase.customer);
                    data.customer_of.insert(purchase.customer, u);
                    data.histories.push(Vec::new());
                    u
                }
            };
            let order = *order_of.entry(purchase.order).or_insert_with(|| {
                data.baskets.push(Vec::new());
                (data.baskets.len() - 1) as u32
            });
            let basket = &mut data.baskets[order as usize];
            if basket.contains(&item) {
                continue;
            }
            basket.push(item);
            data.histories[customer as usize].push(Bought {
                item,
                order,
                at: purchase.at,
            });
            data.now = data.now.max(purchase.at);
        }
        data
    }

    fn intern_item(&mut self, product: i64) -> u32 {
        if let Some(&i) = self.item_of.get(&product) {
            return i;
        }
        let i = self.products.len() as u32;
        self.products.push(product);
        self.item_of.insert(product, i);
        i
    }

    /// Number of items (products known to the models).
    pub fn items(&self) -> usize {
        self.products.len()
    }

    /// The dense index of a product id.
    pub fn item(&self, product: i64) -> Option<u32> {
        self.item_of.get(&product).copied()
    }

    /// The dense index of a customer id.
    pub fn customer(&self, customer: i64) -> Option<u32> {
        self.customer_of.get(&customer).copied()
    }

    /// Number of purchase lines (one per product and order).
    pub fn lines(&self) -> usize {
        self.histories.iter().map(Vec::len).sum()
    }
}

/// What a model knows of one customer when it ranks: the products bought (with time and
/// order), oldest first. A visitor without orders has an empty history and may have
/// products seen in a conversation, given with the time they were seen.
pub type History<'a> = &'a [Bought];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbers_and_keeps_one_line_per_product_and_order() {
        let purchases = [
            Purchase {
                customer: 7,
                product: 100,
                order: 1,
                at: 10,
            },
            Purchase {
                customer: 7,
                product: 100,
                order: 1,
                at: 10,
            },
            Purchase {
                customer: 7,
                product: 200,
                order: 1,
                at: 10,
            },
            Purchase {
                customer: 9,
                product: 100,
                order: 2,
                at: 5,
            },
            Purchase {
                customer: 7,
                product: 100,
                order: 3,
                at: 20,
            },
        ];
        let data = Dataset::new(&purchases, &[300]);
        assert_eq!(data.items(), 3);
        assert_eq!(data.item(300), Some(0));
        assert_eq!(data.customers, vec![9, 7]);
        let seven = &data.histories[data.customer(7).unwrap() as usize];
        let items: Vec<i64> = seven
            .iter()
            .map(|b| data.products[b.item as usize])
            .collect();
        assert_eq!(items, vec![100, 200, 100]);
        assert_eq!(data.baskets.len(), 3);
        assert_eq!(data.now, 20);
        assert_eq!(data.lines(), 4);
    }
}

//! Tendero's database schema, as ordered SeaORM migrations.
//!
//! They run at server start-up and with `tendero migrate`. A migration, once
//! released, is never edited: a change to the schema is a new migration file.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_shop;
mod m20261121_000002_catalog;
mod m20261121_000003_conversations;
mod m20261207_000004_recommend;
mod m20261207_000005_event_keys;
mod m20261207_000006_event_refs;
mod m20261208_000007_click_models;
mod m20261209_000008_analytics;

/// Every migration in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_shop::Migration),
            Box::new(m20261121_000002_catalog::Migration),
            Box::new(m20261121_000003_conversations::Migration),
            Box::new(m20261207_000004_recommend::Migration),
            Box::new(m20261207_000005_event_keys::Migration),
            Box::new(m20261207_000006_event_refs::Migration),
            Box::new(m20261208_000007_click_models::Migration),
            Box::new(m20261209_000008_analytics::Migration),
        ]
    }
}

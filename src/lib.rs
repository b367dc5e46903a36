//! Tendero: a real-time conversational sales agent server for shops.
//!
//! The crate is layered; a module uses only the layers below its own (the arrows
//! are written down in `docs/architecture.md` and checked by a test):
//!
//! - composition: [`server`] builds the services and serves them; [`cli`] is the
//!   `tendero` command line ([`telemetry`] sets up its logs).
//! - transports, side by side: [`http`] (REST, SSE, OpenAPI, metrics) and
//!   [`socket`] (Socket.IO).
//! - use cases: [`agent`] (the sales agent's answer pipeline, memory, tools and
//!   price guard) and [`catalog`] (product files and shop documents loaded in).
//! - domain and infrastructure: [`shop`] (customers, products, orders), [`auth`]
//!   (staff, passwords, tokens), [`retrieval`] (embedders, LanceDB, FAISS, hybrid
//!   search kept in step with the database), [`llm`] (the generators), [`speech`]
//!   (audio and Whisper), [`export`] (reports), [`learning`] (the event log and
//!   what customers send about what they were shown, and the ranking learned from
//!   their clicks),
//!   [`cluster`] (several nodes through Redis), [`db`] (connection and entities),
//!   [`config`] (settings by section), [`error`] (the table of error codes),
//!   [`text`], [`progress`] and [`layout`] (trained models as bytes).

pub mod agent;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod error;
pub mod export;
pub mod http;
pub mod layout;
pub mod learning;
pub mod llm;
pub mod progress;
pub mod recommend;
pub mod retrieval;
pub mod server;
pub mod shop;
pub mod socket;
pub mod speech;
pub mod telemetry;
pub mod text;

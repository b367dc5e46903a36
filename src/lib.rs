//! Tendero: a real-time conversational sales agent server for shops.
//!
//! Map of the crate:
//! - [`config`]: typed settings (defaults → `tendero.toml` → `TENDERO_*` env).
//! - [`app`]: application state, start-up, serving and graceful shutdown.
//! - [`http`]: routes, extractors (auth in signatures), rate limits, metrics, OpenAPI.
//! - [`shop`]: the use cases for users, customers, products and orders.
//! - [`db`]: the connection, write transactions and SeaORM entities.
//! - [`auth`]: password hashing, JWTs and roles.
//! - [`error`]: the one API error type and its stable codes.
//! - [`agent`]: the sales agent's answer pipeline, memory, tools and price guard.
//! - [`llm`]: the generators: Ollama's chat API and the extractive fallback.
//! - [`socket`]: the Socket.IO chat transport.
//! - [`speech`]: voice questions: audio decoding and Whisper transcription.
//! - [`retrieval`]: embedders, the LanceDB chunk store (BM25), FAISS, hybrid search, evaluation.
//! - [`catalog`]: product files and shop documents into the database and the search index.
//! - [`events`]: the event log (searches) written in the background.
//! - [`export`]: CSV/JSON/JSONL reports streamed in constant memory.
//! - [`cli`]: the `tendero` command line.

pub mod agent;
pub mod app;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod export;
pub mod http;
pub mod llm;
pub mod retrieval;
pub mod shop;
pub mod socket;
pub mod speech;
pub mod telemetry;

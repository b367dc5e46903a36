//! Tendero's integration tests: one binary, the real server on a random port, real
//! HTTP, a real SQLite file and (when configured) a real PostgreSQL database.

mod chromium;
mod fake_ollama;
mod helpers;
mod recordings;
mod skip;
mod socket_client;

mod agent;
mod agent_failures;
mod analytics;
mod auth;
mod browser;
mod cli;
mod clientes;
mod events;
mod exportar;
mod extractive;
mod heard;
mod ingest;
mod layers;
mod learning;
mod nodes;
mod ops;
mod panel;
mod pedidos;
mod productos;
mod recommend;
mod recommend_chat;
mod retrieval;
mod robustness;
mod search;
mod socket;
mod voice;

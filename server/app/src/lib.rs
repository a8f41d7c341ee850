//! The `gatehouse` server: configuration, HTTP (REST with a generated OpenAPI document),
//! telemetry and start-up. Handlers stay thin: they parse, call one service from
//! `gatehouse-core`, and shape the response. No SQL lives here.

pub mod cli;
pub mod config;
pub mod delivery;
pub mod dns;
pub mod graphql;
pub mod http;
pub mod openapi;
pub mod startup;
pub mod state;
pub mod telemetry;

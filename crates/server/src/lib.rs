//! The conferencing server: the Plug-N-Meet compatible HTTP API, live room state, history
//! storage and webhooks.
//!
//! [`Server::start`] takes a [`config::ServerConfig`] built in code (the binary loads it from
//! YAML and the environment) and serves until stopped. Rooms are owned one task each
//! ([`rooms`]); history lives behind the [`store::Store`] trait; the HTTP edge has one error
//! type ([`error::ApiError`]).

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod media;
pub mod metrics;
pub mod recorder;
pub mod recording;
pub mod rooms;
pub mod server;
pub mod store;
pub mod tls;
pub mod uploads;
pub mod webhook;

pub use app::{App, StartError};
pub use config::ServerConfig;
pub use server::Server;

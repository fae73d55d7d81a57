//! Wire types of the Plug-N-Meet compatible server-to-server API (`/auth/*`).
//!
//! This crate has no I/O. It owns three things:
//!
//! * the JSON codec rules of Plug-N-Meet's protojson encoding ([`json`]): requests are accepted
//!   with snake_case or lowerCamelCase keys, unknown keys are ignored, 64-bit integers may be
//!   numbers or strings, enums may be names or numbers; replies are snake_case with every
//!   non-optional field present, 64-bit integers as strings and enums as names;
//! * typed identifiers parsed at the boundary ([`ids`]);
//! * request and reply messages ([`room`], [`user`], [`history`], [`polls`]) with the validation rules of
//!   the protocol ([`validate`]), reported with messages that name the offending field.
//!
//! Anything that reads network bytes goes through [`json::decode`], which never panics; the
//! fuzz target `api_request` exercises it.

#![warn(missing_docs)]

pub mod breakout;
pub mod browser;
pub mod content;
pub mod fuzzing;
pub mod history;
pub mod ids;
pub mod json;
pub mod polls;
pub mod reply;
pub mod room;
pub mod status;
pub mod user;
pub mod validate;

pub use status::{CommonResponse, StatusCode};

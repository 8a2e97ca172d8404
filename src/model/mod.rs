//! The model: what the office writes and keeps — the configuration, issues,
//! the archive of posts and events, the theme and the subscriber list — read
//! from files, checked, and held in types the later stages trust.

pub mod archive;
pub mod audience;
pub mod config;
pub mod consent;
pub mod dates;
pub mod event_time;
pub mod finding;
pub mod image;
pub mod issue;
pub mod load_error;
pub mod slug;
pub mod subscribers;
pub mod theme;
pub(crate) mod toml_file;
pub mod url;

//! `newsletter`: compose a charity's supporter newsletter from TOML issue
//! files and an archive of posts and events, and send one personalised
//! message per subscriber.
//!
//! Data flows one way: `Cli → Config → (Issue, Archive, Subscribers) →
//! Rendered → preview | send → Journal`.

pub mod archive_edit;
pub mod bounces;
pub mod check;
pub mod cli;
pub mod commands;
mod external_sort;
pub mod hint;
pub mod http;
pub mod journal;
pub mod lock;
pub mod model;
pub mod preview;
pub mod progress;
pub mod render;
mod replace_file;
pub mod send;
pub mod status_column;
pub mod token;
pub mod unsubscribe;
pub mod web;

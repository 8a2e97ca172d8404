//! Commands that find and add archive content from the command line.

pub mod events;
pub mod posts_list;
mod usage;

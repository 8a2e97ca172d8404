//! One module per subcommand: each takes its arguments, loads the model,
//! and wires the stages together. Nothing below `commands` imports it.

pub mod completions;
pub mod new;
pub mod posts_import;
pub mod status;

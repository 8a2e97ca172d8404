pub mod cards;
pub mod png;
pub mod postfix;
pub mod project;
pub mod smtp;

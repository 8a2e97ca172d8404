pub mod postfix;
pub mod project;
pub mod smtp;

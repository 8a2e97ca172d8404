pub mod project;
pub mod smtp;

pub mod smtp;
pub mod project;

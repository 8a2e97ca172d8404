//! An image as the project's files name it (the theme's logo, a post's
//! thumbnail, the sign-off's signature): the value, its alt text and size,
//! and where it is written. Where it is shown from, and whether the file is
//! fit to send, is [`crate::render::assets`]'s job.

use std::path::PathBuf;

use crate::model::finding::Finding;

/// An image as a file of the project names it, and where it is written.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The key holding the image: `logo`, `image`, `signature-image`.
    pub key: &'static str,
    /// The key of its alt text, and of its width when the data sets it
    /// (a post's thumbnail takes the card's width).
    pub alt_key: &'static str,
    pub width_key: Option<&'static str>,
    /// The value as written: a path or an https:// URL.
    pub src: String,
    pub alt: Option<String>,
    /// The width and height to show it at, in CSS pixels.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The file, line and column of `src`.
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl ImageSpec {
    /// A finding at the image's value.
    pub fn finding(&self, code: &'static str, message: String) -> Finding {
        Finding::error(code, &self.file, message).at(self.line, self.column)
    }
}

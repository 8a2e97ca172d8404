//! Which URLs a message may link to: the one rule the archive, the issue's
//! calls to action and the Markdown renderer share.

/// Whether a URL may become a link in a message: `https://`, `http://` or
/// `mailto:` (never `javascript:`, `data:` or a relative path).
pub fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

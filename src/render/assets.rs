//! The images an email shows (the theme's logo, a post's thumbnail, the
//! sign-off's signature): where each is written, and the URL it is shown from.
//!
//! An image is a file of the project, written as a path from the project
//! folder (the one with `newsletter.toml`) inside the theme's or the
//! archive's folder, like `templates/logo.png`; or an `https://` address on
//! another site. `newsletter web build` publishes each file under `assets/`
//! of the site with a content-hashed name (`logo.3f2a9c1e.png`): a changed
//! image gets a new URL, so an email already sent keeps the picture it had.
//! [`asset_url`] is the one place the render and the web build take that
//! URL from, so they cannot disagree.
//!
//! The pixel size is read from the file's header by hand (PNG, GIF, JPEG:
//! a few lines each) rather than with an image crate, which would decode
//! far more than the two numbers needed.

use std::fs;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::config::Config;
use crate::model::finding::Finding;
use crate::model::image::ImageSpec;

/// The largest image file `check` lets through: mail apps load every image
/// of the message, often on mobile data.
pub const MAX_BYTES: u64 = 200 * 1024;

/// The formats every mail app shows (Gmail and Outlook show no SVG or WebP).
const FORMATS: [&str; 4] = ["png", "jpg", "jpeg", "gif"];

/// An image ready to show: the URL, its file when it is one of the
/// project's, and its size.
#[derive(Debug, Clone)]
pub struct Hosted {
    pub url: String,
    /// The file on disk and its project path, for the web build.
    pub file: Option<(PathBuf, PathBuf)>,
    pub bytes: u64,
    /// Width and height in pixels, when the header could be read.
    pub pixels: Option<(u32, u32)>,
}

impl Hosted {
    /// The height to show `spec` at for `width`: as written, or from the
    /// file's proportions.
    pub fn height_for(&self, spec: &ImageSpec, width: u32) -> Option<u32> {
        spec.height.or_else(|| {
            let (w, h) = self.pixels?;
            (w > 0).then(|| {
                ((u64::from(width) * u64::from(h) + u64::from(w) / 2) / u64::from(w)) as u32
            })
        })
    }
}

/// `logo.3f2a9c1e.png`: the file's name (made URL-safe), the first eight
/// hex digits of the SHA-256 of its bytes, and its extension.
pub fn hashed_name(path: &Path, bytes: &[u8]) -> String {
    let stem: String = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let stem = if stem.is_empty() {
        "image".into()
    } else {
        stem
    };
    let digest = hex::encode(Sha256::digest(bytes));
    format!("{stem}.{}.{}", &digest[..8], extension(path))
}

/// Where a project image is on the site: `assets/` at the site's root,
/// which `web-version-url` gives (see [`crate::render::ics::site_base`]).
pub fn asset_url(config: &Config, path: &Path, bytes: &[u8]) -> String {
    format!(
        "{}assets/{}",
        crate::render::ics::site_base(&config.list.web_version_url),
        hashed_name(path, bytes)
    )
}

/// The image's URL (reading the file when it is the project's), or the
/// finding that says why it has none: `image-not-https`,
/// `image-outside-folders`, `image-not-found`.
pub fn host(config: &Config, spec: &ImageSpec) -> Result<Hosted, Finding> {
    let src = spec.src.trim();
    if is_url(src) {
        if src.len() > 8 && src[..8].eq_ignore_ascii_case("https://") {
            return Ok(Hosted {
                url: src.to_string(),
                file: None,
                bytes: 0,
                pixels: None,
            });
        }
        return Err(spec.finding(
            "image-not-https",
            format!(
                "`{}` is `{src}`, which is not an https:// address; mail apps block or warn about other images. Write the https:// address, or put the file under `templates/` and write its path",
                spec.key
            ),
        ));
    }
    let relative = PathBuf::from(src);
    let project = config.path.parent().unwrap_or(Path::new(""));
    let roots = folders(config);
    let inside = !src.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && roots
            .iter()
            .any(|root| project.join(&relative).starts_with(root));
    if !inside {
        return Err(spec.finding(
            "image-outside-folders",
            format!(
                "`{}` is `{src}`; write the path of an image file from the project folder, inside {} (like `templates/logo.png`), so that `newsletter web build` publishes it and nothing else",
                spec.key,
                roots
                    .iter()
                    .map(|r| format!("`{}/`", r.strip_prefix(project).unwrap_or(r).display()))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ));
    }
    let file = project.join(&relative);
    let not_found = |why: &str| {
        spec.finding(
            "image-not-found",
            format!(
                "`{}` is `{src}`, but {why}; check the path (written from the project folder) or add the file",
                spec.key
            ),
        )
    };
    match fs::symlink_metadata(&file) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(not_found(&format!(
                "`{}` is a symbolic link, which is not published",
                file.display()
            )));
        }
        Ok(meta) if !meta.is_file() => {
            return Err(not_found(&format!("`{}` is not a file", file.display())));
        }
        Ok(_) => {}
        Err(_) => return Err(not_found(&format!("there is no `{}`", file.display()))),
    }
    let bytes = fs::read(&file)
        .map_err(|e| not_found(&format!("`{}` cannot be read ({e})", file.display())))?;
    Ok(Hosted {
        url: asset_url(config, &relative, &bytes),
        pixels: pixels(&bytes),
        bytes: bytes.len() as u64,
        file: Some((file, relative)),
    })
}

/// Every problem of one image, for `check`: those of [`host`], and
/// `image-missing-alt`, `image-missing-width`, `image-too-large`,
/// `image-format`.
pub fn lint(config: &Config, spec: &ImageSpec, findings: &mut Vec<Finding>) {
    if spec.alt.as_deref().is_none_or(|a| a.trim().is_empty()) {
        findings.push(spec.finding(
            "image-missing-alt",
            format!(
                "`{}` has no `{}`: write the words a reader hears, or sees when images are off (for a logo, the name it shows)",
                spec.key, spec.alt_key
            ),
        ));
    }
    if let Some(width_key) = spec.width_key
        && spec.width.is_none_or(|w| w == 0)
    {
        findings.push(spec.finding(
            "image-missing-width",
            format!(
                "`{}` has no `{width_key}`: give the width to show it at in CSS pixels (half the file's width for a 2x image); without it Outlook shows the file at full size",
                spec.key
            ),
        ));
    }
    let hosted = match host(config, spec) {
        Ok(hosted) => hosted,
        Err(finding) => {
            findings.push(finding);
            return;
        }
    };
    if let Some((_, relative)) = &hosted.file {
        if hosted.bytes > MAX_BYTES {
            findings.push(spec.finding(
                "image-too-large",
                format!(
                    "`{}` is {} KB; keep images under {} KB, as mail apps load them on mobile data too: export it smaller, or as a JPEG",
                    relative.display(),
                    hosted.bytes.div_ceil(1024),
                    MAX_BYTES / 1024
                ),
            ));
        }
        if !FORMATS.contains(&extension(relative).as_str()) || hosted.pixels.is_none() {
            findings.push(spec.finding(
                "image-format",
                format!(
                    "`{}` is not a PNG, JPEG or GIF file; those are the formats every mail app shows (Gmail and Outlook show no SVG or WebP)",
                    relative.display()
                ),
            ));
        }
    }
}

/// The folders project images may come from: the theme's and the archive's.
fn folders(config: &Config) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for file in [
        &config.paths.theme,
        &config.paths.posts,
        &config.paths.events,
    ] {
        let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
        if !roots.contains(&dir) {
            roots.push(dir);
        }
    }
    roots
}

/// True for anything with a scheme (`https:`, `data:`, `//host`), false for a path.
fn is_url(src: &str) -> bool {
    if src.starts_with("//") {
        return true;
    }
    match src.find(':') {
        Some(colon) => {
            let scheme = &src[..colon];
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Width and height in pixels from a PNG, GIF or JPEG header.
pub fn pixels(bytes: &[u8]) -> Option<(u32, u32)> {
    let be16 = |at: usize| {
        Some(u32::from(u16::from_be_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let le16 = |at: usize| {
        Some(u32::from(u16::from_le_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let be32 = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16) == Some(b"IHDR") {
        return Some((be32(16)?, be32(20)?));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some((le16(6)?, le16(8)?));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // Segments after the start marker: FF, marker, big-endian length.
        let mut at = 2;
        while at + 4 <= bytes.len() {
            if bytes[at] != 0xFF {
                return None;
            }
            let marker = bytes[at + 1];
            let length = be16(at + 2)? as usize;
            let frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            if frame {
                return Some((be16(at + 7)?, be16(at + 5)?));
            }
            at += 2 + length;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_keep_the_stem_and_extension_and_follow_the_bytes() {
        let a = hashed_name(Path::new("templates/Logo Dark.PNG"), b"one");
        let b = hashed_name(Path::new("templates/Logo Dark.PNG"), b"two");
        assert!(a.starts_with("logo-dark.") && a.ends_with(".png"), "{a}");
        assert_eq!(a.len(), "logo-dark.".len() + 8 + ".png".len());
        assert_ne!(a, b);
        assert_eq!(a, hashed_name(Path::new("elsewhere/Logo Dark.PNG"), b"one"));
    }

    #[test]
    fn pixel_sizes_come_from_png_gif_and_jpeg_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&400u32.to_be_bytes());
        png.extend_from_slice(&96u32.to_be_bytes());
        assert_eq!(pixels(&png), Some((400, 96)));
        assert_eq!(pixels(b"GIF89a\x10\x00\x20\x00"), Some((16, 32)));
        // Start, an APP0 segment of 4 bytes, then a baseline frame header.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 17, 8, 0, 120, 1, 64,
        ];
        assert_eq!(pixels(&jpeg), Some((320, 120)));
        assert_eq!(pixels(b"<svg/>"), None);
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("https://example.org/a.png"));
        assert!(is_url("http://example.org/a.png"));
        assert!(is_url("data:image/png;base64,AAAA"));
        assert!(is_url("//example.org/a.png"));
        assert!(!is_url("templates/logo.png"));
        assert!(!is_url("archive/images/a:b.png"));
    }
}

//! The issue's images from the project's own files, for a preview made
//! before the site is uploaded.
//!
//! The email shows each project image from `assets/NAME` of the site
//! ([`crate::render::assets::asset_url`]), which is not online until `newsletter
//! web build` has run and `site/` is uploaded. So a preview written to a
//! folder copies the files to `assets/` beside its page, and the preview
//! server answers `/assets/NAME` with them; the HTML a preview *shows* has
//! those URLs rewritten ([`Local::rewrite`]). The message itself — its
//! bytes, its headers, what `send` sends — is never touched.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::config::Config;
use crate::render::Loaded;
use crate::render::images::Images;

/// The folder, beside a written preview and on the preview server.
pub const FOLDER: &str = "assets";

/// The project images an issue shows, by their URL on the site.
#[derive(Debug, Clone, Default)]
pub struct Local {
    images: Vec<LocalImage>,
}

#[derive(Debug, Clone)]
struct LocalImage {
    /// The URL the email shows it from.
    url: String,
    /// Its content-hashed name, the URL's last segment.
    name: String,
    file: PathBuf,
}

impl Local {
    /// The images of the rendered issue (logo, signature, its posts'
    /// thumbnails) hosted as the render hosts them ([`Images::of`]).
    pub fn of(config: &Config, loaded: &Loaded) -> Result<Local> {
        let images = Images::of(config, loaded)?;
        let images = images
            .project_files()
            .into_iter()
            .map(|(url, file)| LocalImage {
                url: url.to_string(),
                name: url.rsplit('/').next().unwrap_or_default().to_string(),
                file: file.to_path_buf(),
            })
            .collect();
        Ok(Local { images })
    }

    /// `html` with each image's URL on the site replaced by `prefix` and
    /// its name (`assets/logo.3f2a9c1e.png`).
    pub fn rewrite(&self, html: &str, prefix: &str) -> String {
        let mut html = html.to_string();
        for image in &self.images {
            // As the HTML writes it, in an attribute.
            let written = maud::html! { (image.url) }.into_string();
            html = html.replace(&written, &format!("{prefix}{}", image.name));
        }
        html
    }

    /// The project file whose hashed name is `name`, with its bytes, if
    /// the issue shows it, it is still those bytes and it is a format mail
    /// apps show; and its Content-Type.
    pub fn read(&self, name: &str) -> Option<(Vec<u8>, &'static str)> {
        let image = self.images.iter().find(|i| i.name == name)?;
        let content_type = content_type(name)?;
        let bytes = fs::read(&image.file).ok()?;
        // Changed since the page was rendered: the page reloads with its
        // new name.
        (crate::render::assets::hashed_name(&image.file, &bytes) == name)
            .then_some((bytes, content_type))
    }

    /// The files, for the preview server to watch.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.images.iter().map(|i| i.file.as_path())
    }

    /// Copies each image to `dir/assets/NAME`; the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for image in &self.images {
            let folder = dir.join(FOLDER);
            fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create `{}`", folder.display()))?;
            let target = folder.join(&image.name);
            let bytes = fs::read(&image.file)
                .with_context(|| format!("cannot read `{}`", image.file.display()))?;
            fs::write(&target, bytes)
                .with_context(|| format!("cannot write `{}`", target.display()))?;
            written.push(target);
        }
        Ok(written)
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

/// The Content-Type of the formats every mail app shows; `None` for any
/// other (which `check` reports as `image-format`, and which a preview
/// then shows as a mail app would: not at all).
fn content_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Local {
        Local {
            images: vec![LocalImage {
                url: "https://news.example.org/a&b/assets/logo.0123abcd.png".into(),
                name: "logo.0123abcd.png".into(),
                file: PathBuf::from("templates/logo.png"),
            }],
        }
    }

    #[test]
    fn rewrites_the_urls_as_the_html_writes_them_and_nothing_else() {
        let html = r#"<img src="https://news.example.org/a&amp;b/assets/logo.0123abcd.png" alt=""><a href="https://news.example.org/a&amp;b/">"#;
        assert_eq!(
            local().rewrite(html, "/assets/"),
            r#"<img src="/assets/logo.0123abcd.png" alt=""><a href="https://news.example.org/a&amp;b/">"#
        );
    }

    #[test]
    fn serves_only_the_formats_mail_apps_show() {
        assert_eq!(content_type("logo.0123abcd.PNG"), Some("image/png"));
        assert_eq!(content_type("a.0123abcd.jpeg"), Some("image/jpeg"));
        assert_eq!(content_type("a.0123abcd.svg"), None);
        assert_eq!(content_type("noextension"), None);
    }
}

//! The images of one issue, resolved to the URLs the email shows them
//! from ([`crate::render::assets::host`]): the logo, the signature and each post's
//! thumbnail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::archive::Post;
use crate::model::config::Config;
use crate::model::finding::Finding;
use crate::model::image::ImageSpec;
use crate::render::assets;

/// The width of a post card's thumbnail, in CSS pixels.
pub const THUMBNAIL_WIDTH: u32 = 128;

/// An image as the HTML shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub url: String,
    pub alt: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The project file it is published from; `None` for an image on
    /// another site.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct Images {
    pub logo: Option<Shown>,
    pub signature: Option<Shown>,
    /// Post id → its thumbnail.
    pub thumbnails: HashMap<String, Shown>,
}

impl Images {
    /// The images of a loaded issue (the theme's logo, the sign-off's
    /// signature, the thumbnails of the posts its sections name), hosted as
    /// its render hosts them: what the preview serves and the web build
    /// publishes.
    pub fn of(config: &Config, loaded: &super::Loaded) -> Result<Images, Box<Finding>> {
        let posts = loaded
            .issue
            .content
            .sections
            .iter()
            .flat_map(|s| &s.posts)
            .filter_map(|id| loaded.archive.post(id.get_ref()));
        Images::resolve(
            config,
            loaded.theme.logo_image(),
            loaded.issue.signature_image(),
            posts,
        )
    }

    /// Hosts every image; a missing file or a URL that is not https is the
    /// finding `check` reports for it, at its line.
    pub fn resolve<'a>(
        config: &Config,
        logo: Option<ImageSpec>,
        signature: Option<ImageSpec>,
        posts: impl Iterator<Item = &'a Post>,
    ) -> Result<Images, Box<Finding>> {
        let mut images = Images {
            logo: logo.map(|s| show(config, &s, s.width)).transpose()?,
            signature: signature.map(|s| show(config, &s, s.width)).transpose()?,
            thumbnails: HashMap::new(),
        };
        for post in posts {
            if let Some(spec) = &post.image
                && !images.thumbnails.contains_key(&post.id)
            {
                let shown = show(config, spec, Some(THUMBNAIL_WIDTH))?;
                images.thumbnails.insert(post.id.clone(), shown);
            }
        }
        Ok(images)
    }

    /// Each image shown from a project file, once: its URL and the file.
    pub fn project_files(&self) -> Vec<(&str, &Path)> {
        let mut files: Vec<(&str, &Path)> = Vec::new();
        let shown = self.logo.iter().chain(&self.signature);
        for image in shown.chain(self.thumbnails.values()) {
            if let Some(file) = &image.file
                && !files.iter().any(|(url, _)| *url == image.url)
            {
                files.push((&image.url, file));
            }
        }
        files.sort();
        files
    }
}

fn show(config: &Config, spec: &ImageSpec, width: Option<u32>) -> Result<Shown, Finding> {
    let hosted = assets::host(config, spec)?;
    Ok(Shown {
        height: width.and_then(|w| hosted.height_for(spec, w)),
        url: hosted.url,
        file: hosted.file.map(|(file, _)| file),
        alt: spec.alt.clone().unwrap_or_default().trim().to_string(),
        width,
    })
}

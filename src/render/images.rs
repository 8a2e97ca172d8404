//! The images of one issue, resolved to the URLs the email shows them
//! from ([`crate::assets::host`]): the logo, the signature and each post's
//! thumbnail.

use std::collections::HashMap;

use anyhow::Result;

use crate::assets::{self, ImageSpec};
use crate::model::archive::Post;
use crate::model::config::Config;

/// The width of a post card's thumbnail, in CSS pixels.
pub const THUMBNAIL_WIDTH: u32 = 128;

/// An image as the HTML shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub url: String,
    pub alt: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Images {
    pub logo: Option<Shown>,
    pub signature: Option<Shown>,
    /// Post id → its thumbnail.
    pub thumbnails: HashMap<String, Shown>,
}

impl Images {
    /// Hosts every image; a missing file or a URL that is not https is the
    /// error `check` reports for it, at its line.
    pub fn resolve<'a>(
        config: &Config,
        logo: Option<ImageSpec>,
        signature: Option<ImageSpec>,
        posts: impl Iterator<Item = &'a Post>,
    ) -> Result<Images> {
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
}

fn show(config: &Config, spec: &ImageSpec, width: Option<u32>) -> Result<Shown> {
    let hosted = assets::host(config, spec)?;
    Ok(Shown {
        height: width.and_then(|w| spec.height_for(w, &hosted)),
        url: hosted.url,
        alt: spec.alt.clone().unwrap_or_default().trim().to_string(),
        width,
    })
}

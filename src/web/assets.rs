//! The images the issues show, published under `assets/` of the site with
//! the content-hashed names the emails use ([`crate::render::assets::asset_url`]).
//!
//! A name never changes its bytes, so a file is written once and left: keep
//! `assets/` on the server when uploading a new build, as emails already
//! sent show their images from there.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::config::Config;
use crate::model::image::ImageSpec;
use crate::render::Loaded;
use crate::render::assets;

/// The site folder the images go to.
pub const FOLDER: &str = "assets";

/// The project files an issue shows (logo, signature, its posts'
/// thumbnails), by their hashed name.
pub fn of_issue(config: &Config, loaded: &Loaded) -> Result<BTreeMap<String, PathBuf>> {
    let mut specs: Vec<ImageSpec> = Vec::new();
    specs.extend(loaded.theme.logo_image());
    specs.extend(loaded.issue.signature_image());
    for section in &loaded.issue.content.sections {
        for id in &section.posts {
            if let Some(image) = loaded
                .archive
                .post(id.get_ref())
                .and_then(|p| p.image.clone())
            {
                specs.push(image);
            }
        }
    }
    let mut files = BTreeMap::new();
    for spec in &specs {
        let hosted = assets::host(config, spec)?;
        if let Some((file, _)) = hosted.file {
            let name = hosted
                .url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            files.insert(name, file);
        }
    }
    Ok(files)
}

/// Copies each file to `out/assets/NAME`, unless it is there already.
pub fn publish(out: &Path, files: &BTreeMap<String, PathBuf>) -> Result<usize> {
    let dir = out.join(FOLDER);
    for (name, file) in files {
        let target = dir.join(name);
        let bytes = fs::read(file).with_context(|| format!("cannot read `{}`", file.display()))?;
        if fs::read(&target).is_ok_and(|old| old == bytes) {
            continue;
        }
        fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        fs::write(&target, &bytes)
            .with_context(|| format!("cannot write `{}`", target.display()))?;
    }
    Ok(files.len())
}

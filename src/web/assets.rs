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
use crate::render::Loaded;
use crate::render::images::Images;

/// The site folder the images go to.
pub const FOLDER: &str = "assets";

/// The project files an issue shows (logo, signature, its posts'
/// thumbnails), by their hashed name: the images render hosts for it
/// ([`Images::project_files`], as the preview shows them).
pub fn of_issue(config: &Config, loaded: &Loaded) -> Result<BTreeMap<String, PathBuf>> {
    let images = Images::of(config, loaded)?;
    let files = images
        .project_files()
        .into_iter()
        .map(|(url, file)| {
            let name = url.rsplit('/').next().unwrap_or_default();
            (name.to_string(), file.to_path_buf())
        })
        .collect();
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

//! The image lints: every image an issue shows has alt text and a width,
//! is a PNG, JPEG or GIF file of the project under 200 KB that the web
//! build can publish, or an https:// address ([`crate::render::assets::lint`]).
//! Images in the Markdown get their width from the layout; their alt text
//! is `missing-alt`'s.

use toml::Spanned;

use crate::model::archive::Archive;
use crate::model::config::Config;
use crate::model::finding::Finding;
use crate::model::issue::Issue;
use crate::model::theme::Theme;
use crate::render::assets;
use crate::render::markdown::Markdown;
use crate::render::value_line;

/// Lints the logo, the signature, the thumbnails of the issue's posts and
/// the images of its Markdown. False after any error: the issue is then
/// not rendered, so an image is reported once, here, at its line.
pub fn lint(
    config: &Config,
    theme: &Theme,
    archive: &Archive,
    issue: &Issue,
    findings: &mut Vec<Finding>,
) -> bool {
    let mut specs = Vec::new();
    specs.extend(theme.logo_image());
    specs.extend(issue.signature_image());
    let mut seen = std::collections::HashSet::new();
    for section in &issue.content.sections {
        for id in &section.posts {
            if let Some(post) = archive.post(id.get_ref())
                && seen.insert(post.id.as_str())
            {
                specs.extend(post.image.clone());
            }
        }
    }
    let before = findings.len();
    for spec in &specs {
        assets::lint(config, spec, findings);
    }

    let c = &issue.content;
    let mut markdowns: Vec<&Spanned<String>> = vec![&c.letter];
    markdowns.extend(c.sections.iter().filter_map(|s| s.body.as_ref()));
    markdowns.extend(c.call_to_action.as_ref().and_then(|cta| cta.intro.as_ref()));
    markdowns.extend(c.sign_off.text.as_ref());
    for md in markdowns {
        let links = Markdown::links(md.get_ref());
        for image in Markdown::links_and_images(md.get_ref()) {
            let url = image.url.trim();
            if links.contains(&image) || url.to_ascii_lowercase().starts_with("https://") {
                continue;
            }
            findings.push(
                Finding::error(
                    "image-not-https",
                    &issue.source.path,
                    format!(
                        "the image `{url}` is not an https:// address, so the email shows its alt text instead; write the image's full https:// address"
                    ),
                )
                .at_line(value_line(&issue.source, md, image.offset)),
            );
        }
    }
    !findings[before..]
        .iter()
        .any(|f| f.severity == crate::model::finding::Severity::Error)
}

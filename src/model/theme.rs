//! `templates/theme.toml`: colours, logo and fonts the office can change
//! without touching Rust.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::model::finding::Finding;
use crate::model::image::ImageSpec;
use crate::model::load_error::LoadError;
use crate::model::toml_file::{Source, key_line};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Theme {
    pub font_stack: String,
    pub heading_font_stack: String,
    pub text_colour: String,
    pub muted_colour: String,
    pub background_colour: String,
    pub page_colour: String,
    pub accent_colour: String,
    pub button_colour: String,
    pub button_text_colour: String,
    pub rule_colour: String,
    pub dark_text_colour: String,
    pub dark_muted_colour: String,
    pub dark_background_colour: String,
    pub dark_page_colour: String,
    pub dark_accent_colour: String,
    /// Dark mode's rules and the button: optional, so that a theme written
    /// before they existed still loads (the defaults suit the example's
    /// dark card, #1c1c1e).
    #[serde(default = "default_dark_rule_colour")]
    pub dark_rule_colour: String,
    #[serde(default = "default_dark_button_colour")]
    pub dark_button_colour: String,
    #[serde(default = "default_dark_button_text_colour")]
    pub dark_button_text_colour: String,
    /// The logo at the top: an image of the project (`templates/logo.png`)
    /// or an https:// URL; `logo-url` is its older name.
    #[serde(alias = "logo-url")]
    pub logo: Option<Spanned<String>>,
    pub logo_alt: Option<String>,
    /// The width to show the logo at, in CSS pixels; the height follows
    /// the file's proportions unless given.
    pub logo_width: Option<u32>,
    pub logo_height: Option<u32>,
    /// The file as read, for the lines of findings.
    #[serde(skip)]
    pub source: Option<Arc<Source>>,
}

/// 3.4:1 against #1c1c1e: a rule WCAG 1.4.11 can see, quieter than text.
fn default_dark_rule_colour() -> String {
    "#6e6e73".to_string()
}

/// The example's dark accent: 8.8:1 against #1c1c1e, where the light
/// button's #8a1538 is 1.8:1 and its shape would vanish.
fn default_dark_button_colour() -> String {
    "#f2a5bb".to_string()
}

fn default_dark_button_text_colour() -> String {
    "#1c1c1e".to_string()
}

impl Theme {
    pub fn load(path: &Path) -> Result<Theme, LoadError> {
        let source = Source::read(path)?;
        let mut theme: Theme = source.parse()?;
        for (key, value) in [
            ("text-colour", &theme.text_colour),
            ("muted-colour", &theme.muted_colour),
            ("background-colour", &theme.background_colour),
            ("page-colour", &theme.page_colour),
            ("accent-colour", &theme.accent_colour),
            ("button-colour", &theme.button_colour),
            ("button-text-colour", &theme.button_text_colour),
            ("rule-colour", &theme.rule_colour),
            ("dark-text-colour", &theme.dark_text_colour),
            ("dark-muted-colour", &theme.dark_muted_colour),
            ("dark-background-colour", &theme.dark_background_colour),
            ("dark-page-colour", &theme.dark_page_colour),
            ("dark-accent-colour", &theme.dark_accent_colour),
            ("dark-rule-colour", &theme.dark_rule_colour),
            ("dark-button-colour", &theme.dark_button_colour),
            ("dark-button-text-colour", &theme.dark_button_text_colour),
        ] {
            if !is_hex_colour(value) {
                return Err(invalid_at(&source, key)
                    .says(format!("`{key}` is `{value}`; write colours as #rrggbb"))
                    .into());
            }
        }
        for (key, value) in [
            ("font-stack", &theme.font_stack),
            ("heading-font-stack", &theme.heading_font_stack),
        ] {
            if value.contains(['<', '>', ';', '{', '}', '"']) {
                return Err(invalid_at(&source, key)
                    .says(format!(
                        "`{key}` may hold font names, commas and single quotes only"
                    ))
                    .into());
            }
        }
        // The logo's path, alt text and width are `check`'s (`image-…`).
        theme.source = Some(Arc::new(source));
        Ok(theme)
    }

    /// The logo, when the theme has one.
    pub fn logo_image(&self) -> Option<ImageSpec> {
        let logo = self.logo.as_ref()?;
        let (file, (line, column)) = match &self.source {
            Some(source) => (
                source.path.clone(),
                crate::model::toml_file::line_column(&source.text, logo.span().start),
            ),
            None => (Default::default(), (1, 1)),
        };
        Some(ImageSpec {
            key: "logo",
            alt_key: "logo-alt",
            width_key: Some("logo-width"),
            src: logo.get_ref().clone(),
            alt: self.logo_alt.clone(),
            width: self.logo_width,
            height: self.logo_height,
            file,
            line,
            column,
        })
    }
}

/// An `invalid-theme` finding at `key`'s line.
fn invalid_at(source: &Source, key: &str) -> Finding {
    let finding = Finding::error("invalid-theme", &source.path, "");
    match key_line(&source.text, key) {
        Some(line) => finding.at_line(line),
        None => finding,
    }
}

fn is_hex_colour(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].chars().all(|c| c.is_ascii_hexdigit())
}

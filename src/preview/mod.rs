//! `newsletter preview`: one subscriber's message written to a folder, or
//! shown on a local page that follows every edit (`--serve`, in [`serve`]).
//! Both show the issue's images from the project's files ([`images`]).

pub mod images;
mod serve;

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::model::config::Config;
use crate::model::subscribers::{SubscriberReader, SubscriptionStatus};
use crate::render::message::Composer;
use crate::token::Signer;

/// What to preview, resolved from the command line.
pub struct Preview {
    pub issue: PathBuf,
    pub out: Option<PathBuf>,
    pub as_email: Option<String>,
    pub subscribers: Option<PathBuf>,
    /// Serve a live page on this port instead of writing files.
    pub serve: Option<u16>,
}

/// Secret used when none is set: previews are never sent, so a fixed
/// placeholder is fine and keeps the output stable.
pub const PREVIEW_SECRET: &[u8] = b"preview-only-not-a-secret";

pub fn run(config: &Config, p: &Preview) -> Result<ExitCode> {
    if let Some(port) = p.serve {
        return serve::run(config, p, port);
    }
    let composed = compose(config, p)?;
    let out = p
        .out
        .clone()
        .unwrap_or_else(|| config.beside("preview").join(&composed.issue_id));
    for line in composed.audience_notes() {
        eprintln!("{line}");
    }
    fs::create_dir_all(&out).with_context(|| format!("cannot create `{}`", out.display()))?;
    // `index.html` is the HTML part as sent; `preview.html` the same with
    // its images from `assets/` beside it, to open before the site is up.
    let page = composed
        .images
        .rewrite(&composed.html, &format!("{}/", images::FOLDER));
    composed.images.write(&out)?;
    let files = [
        ("index.html", composed.html.into_bytes()),
        ("index.txt", composed.text.into_bytes()),
        ("message.eml", composed.message),
        ("preview.html", page.into_bytes()),
    ];
    for (name, bytes) in files {
        let file = out.join(name);
        fs::write(&file, bytes).with_context(|| format!("cannot write `{}`", file.display()))?;
        println!("{}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// One subscriber's message: the two parts and the whole message.
pub struct Composed {
    pub issue_id: String,
    pub html: String,
    pub text: String,
    /// The message as a mail app would receive it (RFC 5322 bytes).
    pub message: Vec<u8>,
    /// The project images the HTML part shows from the site.
    pub images: images::Local,
    pub email: String,
    /// What an inbox shows beside the subject: the sender's name (or
    /// address) and the preheader.
    pub sender: String,
    pub preheader: String,
    /// The issue's audience in words, when it has one, and whether this
    /// subscriber is in it.
    pub audience: Option<(String, bool)>,
    /// Each section with an audience: heading, audience in words, and
    /// whether this subscriber gets it.
    pub sections: Vec<SectionShown>,
}

/// An audienced section as a preview shows it.
pub struct SectionShown {
    pub number: usize,
    pub heading: String,
    pub audience: String,
    pub included: bool,
}

impl Composed {
    /// What the preview says of the audiences, in lines.
    pub fn audience_notes(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some((audience, false)) = &self.audience {
            lines.push(format!(
                "note: `{}` is outside the issue's audience ({audience}): a real send does not mail them",
                self.email
            ));
        }
        for s in &self.sections {
            lines.push(format!(
                "section {} `{}` ({}): {} for `{}`",
                s.number,
                s.heading,
                s.audience,
                if s.included { "included" } else { "left out" },
                self.email
            ));
        }
        lines
    }
}

/// Renders the issue and builds the message for `p.as_email` (or the first
/// subscribed address).
pub fn compose(config: &Config, p: &Preview) -> Result<Composed> {
    let loaded = crate::render::load_issue(config, &p.issue)?;
    let local_images = images::Local::of(config, &loaded)?;
    let path = p
        .subscribers
        .clone()
        .unwrap_or_else(|| config.paths.subscribers.clone());
    let mut reader = SubscriberReader::open(&path)?;
    let columns = reader.columns().clone();
    let wanted = p.as_email.as_ref().map(|e| e.trim().to_lowercase());
    let subscriber = reader
        .by_ref()
        .filter_map(Result::ok)
        .find(|s| match &wanted {
            Some(key) => &s.key == key,
            None => s.status == SubscriptionStatus::Subscribed,
        });
    let Some(subscriber) = subscriber else {
        match wanted {
            Some(key) => bail!("no subscriber `{key}` in `{}`", path.display()),
            None => bail!(
                "`{}` has no subscribed address to preview for; pass --as ADDRESS",
                path.display()
            ),
        }
    };
    let secret = config.unsubscribe_secret();
    let signer = Signer::new(
        &config.list.id,
        secret.as_deref().map_or(PREVIEW_SECRET, str::as_bytes),
    );
    let composer = Composer::new(config, &loaded.rendered, &columns, signer, "")?;
    let built = composer.build(&subscriber)?;
    let (html, text) = composer.parts(&subscriber);
    let personal = composer.personal(&subscriber);
    let unsubscribe_url = composer.unsubscribe_url(&subscriber.email);
    let preheader = loaded
        .rendered
        .preheader_for(&personal.values(&unsubscribe_url, &subscriber.email));
    let from = &config.list.from;
    let sender = from.name.clone().unwrap_or_else(|| from.email.to_string());
    let audiences = &loaded.rendered.audiences;
    let selector = crate::model::audience::Selector::new(audiences, &columns);
    let mask = composer.sections_for(&subscriber);
    Ok(Composed {
        issue_id: loaded.issue.id.clone(),
        html,
        text,
        message: built.message.formatted(),
        images: local_images,
        sender,
        preheader,
        audience: (!audiences.issue.is_everyone()).then(|| {
            (
                audiences.issue.to_string(),
                selector.in_audience(&subscriber),
            )
        }),
        sections: audiences
            .sections
            .iter()
            .enumerate()
            .map(|(bit, s)| SectionShown {
                number: s.index + 1,
                heading: s.heading.clone(),
                audience: s.audience.to_string(),
                included: mask & (1 << bit) != 0,
            })
            .collect(),
        email: subscriber.email,
    })
}

//! One subscriber's message: the rendered issue with their holes filled,
//! as a `multipart/alternative` MIME message with the bulk-mail headers.

use anyhow::{Context, Result};
use lettre::Message;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart};
use sha2::{Digest, Sha256};

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::audience::Selector;
use crate::model::config::{Config, Dkim, DkimAlgorithm};
use crate::model::subscribers::{Columns, Subscriber};
use crate::render::qp::QpTemplate;
use crate::render::{Personal, Rendered, Template};
use crate::token::Signer;

/// What every message of one issue shares; built once per run.
pub struct Composer<'a> {
    pub config: &'a Config,
    pub rendered: &'a Rendered,
    pub columns: &'a Columns,
    pub signer: Signer,
    /// Prefix for the subject, like `[TEST] `.
    pub subject_prefix: String,
    /// Signs every message when set.
    pub dkim: Option<DkimConfig>,
    /// Which audienced sections a subscriber gets; None when no section
    /// has an audience.
    selector: Option<Selector>,
    /// The parts of each combination of audienced sections met so far,
    /// built once each: a message only fills holes.
    parts: Mutex<HashMap<u64, Arc<Parts>>>,
    /// The parts with every section.
    all: Arc<Parts>,
    /// `List-Id` value, the same for every message.
    list_id: String,
}

/// The two parts of one combination of sections, as templates and
/// pre-encoded as quoted-printable.
struct Parts {
    html: Template,
    text: Template,
    qp_html: QpTemplate,
    qp_text: QpTemplate,
}

impl Parts {
    fn new(html: Template, text: Template) -> Parts {
        Parts {
            qp_html: QpTemplate::new(&html),
            qp_text: QpTemplate::new(&text),
            html,
            text,
        }
    }
}

/// The headers DKIM signs. Not Content-Type: signing it breaks multipart
/// messages with lettre.
const SIGNED_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Reads the DKIM key and prepares the signer (relaxed/relaxed: lettre's
/// default simple header canonicalization has been seen to fail checks).
pub fn dkim_config(dkim: &Dkim) -> Result<DkimConfig> {
    let key = std::fs::read_to_string(&dkim.private_key_file).with_context(|| {
        format!(
            "cannot read the DKIM key `{}`",
            dkim.private_key_file.display()
        )
    })?;
    let algorithm = match dkim.algorithm {
        DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let key = DkimSigningKey::new(key.trim(), algorithm).map_err(|e| {
        anyhow::anyhow!(
            "`{}` is not a usable {:?} DKIM key ({e}); RSA keys must be PKCS#1 PEM (`openssl genrsa -traditional`), Ed25519 keys the base64 32-byte seed",
            dkim.private_key_file.display(),
            dkim.algorithm
        )
    })?;
    Ok(DkimConfig::new(
        dkim.selector.clone(),
        dkim.domain.clone(),
        key,
        SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

/// A built message and the envelope facts the journal needs.
pub struct Built {
    pub message: Message,
    pub message_id: String,
}

impl<'a> Composer<'a> {
    /// Prepares what every message shares: the DKIM key and the two parts
    /// pre-encoded as quoted-printable.
    pub fn new(
        config: &'a Config,
        rendered: &'a Rendered,
        columns: &'a Columns,
        signer: Signer,
        subject_prefix: &str,
    ) -> Result<Composer<'a>> {
        Ok(Composer {
            config,
            rendered,
            columns,
            signer,
            subject_prefix: subject_prefix.to_string(),
            dkim: config.dkim.as_ref().map(dkim_config).transpose()?,
            selector: (!rendered.audiences.sections.is_empty())
                .then(|| Selector::new(&rendered.audiences, columns)),
            parts: Mutex::new(HashMap::new()),
            all: Arc::new(Parts::new(rendered.html.clone(), rendered.text.clone())),
            list_id: format!("{} <{}>", ascii_phrase(&config.list.name), config.list.id),
        })
    }

    /// The unsubscribe URL for an address.
    pub fn unsubscribe_url(&self, address: &str) -> String {
        self.config
            .list
            .unsubscribe_url
            .replace("{token}", &self.signer.token(address))
    }

    /// A Message-ID that is the same for the same issue and recipient, so a
    /// retried message keeps it and receivers can spot the duplicate.
    pub fn message_id(&self, key: &str) -> String {
        let digest = Sha256::digest(format!(
            "{}\n{}\n{}",
            self.config.list.id, self.rendered.issue_id, key
        ));
        format!(
            "<{}.{}@{}>",
            self.rendered.issue_id,
            hex::encode(&digest[..16]),
            self.config.from_domain()
        )
    }

    /// The greeting and merge-field values of one subscriber.
    pub fn personal<'s>(&'s self, subscriber: &'s Subscriber) -> Personal<'s> {
        self.rendered
            .personal(|name| subscriber.field(self.columns, name))
    }

    /// The audienced sections a subscriber gets, one bit each (in the
    /// order of [`crate::model::audience::Audiences::sections`]).
    pub fn sections_for(&self, subscriber: &Subscriber) -> u64 {
        self.selector.as_ref().map_or(0, |s| s.sections(subscriber))
    }

    /// The parts of a subscriber's combination of sections, built the
    /// first time it is met.
    fn parts_of(&self, subscriber: &Subscriber) -> Arc<Parts> {
        let Some(selector) = &self.selector else {
            return Arc::clone(&self.all);
        };
        let mask = selector.sections(subscriber);
        // A poisoned lock only means another thread panicked mid-insert of
        // a complete value: the map is still usable.
        let mut cache = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(cache.entry(mask).or_insert_with(|| {
            let (html, text) = self.rendered.parts_for(mask);
            Arc::new(Parts::new(html, text))
        }))
    }

    /// The HTML and text parts for one subscriber, as they read (not
    /// encoded), for a preview.
    pub fn parts(&self, subscriber: &Subscriber) -> (String, String) {
        let personal = self.personal(subscriber);
        let url = self.unsubscribe_url(&subscriber.email);
        let values = personal.values(&url, &subscriber.email);
        let parts = self.parts_of(subscriber);
        (parts.html.fill(&values), parts.text.fill(&values))
    }

    /// Builds the message for one subscriber.
    pub fn build(&self, subscriber: &Subscriber) -> Result<Built> {
        let list = &self.config.list;
        let personal = self.personal(subscriber);
        let unsubscribe_url = self.unsubscribe_url(&subscriber.email);
        let values = personal.values(&unsubscribe_url, &subscriber.email);
        let parts = self.parts_of(subscriber);
        let address = subscriber.email.parse().with_context(|| {
            format!(
                "line {}: `{}` is not a valid address",
                subscriber.line, subscriber.email
            )
        })?;
        let name = header_phrase(&subscriber.display_name());
        let to = Mailbox::new((!name.is_empty()).then_some(name), address);
        let message_id = self.message_id(&subscriber.key);
        let mut builder = Message::builder()
            .from(list.from.clone())
            .to(to)
            .raw_header(subject_header(format!(
                "{}{}",
                self.subject_prefix,
                self.rendered.subject_for(&values)
            )))
            .date_now()
            .message_id(Some(message_id.clone()))
            .raw_header(raw("List-Id", self.list_id.clone()))
            .raw_header(raw(
                "List-Unsubscribe",
                format!(
                    "<{unsubscribe_url}>, <mailto:{}?subject=unsubscribe>",
                    list.unsubscribe_mailto
                ),
            ))
            .raw_header(raw(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .raw_header(raw("Precedence", "bulk".into()))
            .raw_header(raw("Auto-Submitted", "auto-generated".into()));
        if let Some(reply_to) = &list.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let mut message = builder
            .multipart(MultiPart::alternative_plain_html(
                Body::dangerous_pre_encoded(
                    parts.qp_text.fill(&values),
                    ContentTransferEncoding::QuotedPrintable,
                ),
                Body::dangerous_pre_encoded(
                    parts.qp_html.fill(&values),
                    ContentTransferEncoding::QuotedPrintable,
                ),
            ))
            .context("cannot build the message")?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(Built {
            message,
            message_id,
        })
    }
}

/// Longest word a header line can carry as it is: RFC 5322 §2.1.1 allows
/// 998 characters a line, and a word cannot be folded.
const MAX_HEADER_WORD: usize = 900;

/// The `Subject` header. lettre folds it between words and encodes words
/// that are not ASCII; an ASCII word too long for any line (a pasted blob)
/// would make a line longer than servers accept, so such a subject is
/// written as RFC 2047 encoded words instead, which may be split anywhere
/// and are joined again by whoever reads them. So is a subject with `=?` in
/// it: lettre passes ASCII words through, and a merge value written like an
/// encoded word (`=?utf-8?b?…?=`) would be decoded by the reader into
/// something else.
fn subject_header(subject: String) -> HeaderValue {
    let name = HeaderName::new_from_ascii_str("Subject");
    if !subject.contains("=?")
        && subject
            .split_whitespace()
            .all(|word| word.len() <= MAX_HEADER_WORD)
    {
        return HeaderValue::new(name, subject);
    }
    use base64::Engine as _;
    let mut encoded = String::new();
    let mut chunk = String::new();
    let flush = |chunk: &mut String, encoded: &mut String| {
        if !encoded.is_empty() {
            encoded.push_str("\r\n ");
        }
        encoded.push_str("=?utf-8?b?");
        encoded.push_str(&base64::engine::general_purpose::STANDARD.encode(chunk.as_bytes()));
        encoded.push_str("?=");
        chunk.clear();
    };
    for c in subject.chars() {
        // 45 bytes make 60 base64 characters: each line stays under 78.
        if chunk.len() + c.len_utf8() > 45 {
            flush(&mut chunk, &mut encoded);
        }
        // Control characters cannot reach here from an issue; never let
        // one into a header anyway.
        chunk.push(if c.is_control() { ' ' } else { c });
    }
    if !chunk.is_empty() {
        flush(&mut chunk, &mut encoded);
    }
    HeaderValue::dangerous_new_pre_encoded(name, subject, encoded)
}

/// A display name safe for a header: the subscriber reader already turns
/// control characters into spaces, but a [`Subscriber`] can be made without
/// it, and lettre panics on a name with a line break in it.
fn header_phrase(name: &str) -> String {
    name.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn raw(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// `List-Id`'s phrase must be plain ASCII; quote it, dropping what cannot be.
fn ascii_phrase(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| match c {
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'á' | 'à' | 'â' | 'ä' => 'a',
            c if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' => c,
            _ => ' ',
        })
        .collect();
    format!(
        "\"{}\"",
        ascii.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

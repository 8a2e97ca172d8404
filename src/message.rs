//! One subscriber's message: the rendered issue with their holes filled,
//! as a `multipart/alternative` MIME message with the bulk-mail headers.

use anyhow::{Context, Result};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::render::{Rendered, SlotValues};
use crate::subscribers::{Columns, Subscriber};
use crate::token::Signer;

/// What every message of one issue shares; built once per run.
pub struct Composer<'a> {
    pub config: &'a Config,
    pub rendered: &'a Rendered,
    pub columns: &'a Columns,
    pub signer: Signer,
    /// Prefix for the subject, like `[TEST] `.
    pub subject_prefix: String,
}

/// A built message and the envelope facts the journal needs.
pub struct Built {
    pub message: Message,
    pub message_id: String,
}

impl Composer<'_> {
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

    /// Builds the message for one subscriber.
    pub fn build(&self, subscriber: &Subscriber) -> Result<Built> {
        let list = &self.config.list;
        let greeting = self
            .rendered
            .greeting
            .fill(|name| subscriber.field(self.columns, name));
        let unsubscribe_url = self.unsubscribe_url(&subscriber.email);
        let values = SlotValues {
            greeting: &greeting,
            unsubscribe_url: &unsubscribe_url,
            email: &subscriber.email,
        };
        let address = subscriber.email.parse().with_context(|| {
            format!(
                "line {}: `{}` is not a valid address",
                subscriber.line, subscriber.email
            )
        })?;
        let name = subscriber.display_name();
        let to = Mailbox::new((!name.is_empty()).then_some(name), address);
        let message_id = self.message_id(&subscriber.key);
        let mut builder = Message::builder()
            .from(list.from.clone())
            .to(to)
            .subject(format!("{}{}", self.subject_prefix, self.rendered.subject))
            .date_now()
            .message_id(Some(message_id.clone()))
            .raw_header(raw(
                "List-Id",
                format!("{} <{}>", ascii_phrase(&list.name), list.id),
            ))
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
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                self.rendered.text.fill(&values),
                self.rendered.html.fill(&values),
            ))
            .context("cannot build the message")?;
        Ok(Built {
            message,
            message_id,
        })
    }
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

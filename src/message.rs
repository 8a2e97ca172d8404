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

use crate::config::{Config, Dkim, DkimAlgorithm};
use crate::qp::QpTemplate;
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
    /// Signs every message when set.
    pub dkim: Option<DkimConfig>,
    html: QpTemplate,
    text: QpTemplate,
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
            html: QpTemplate::new(&rendered.html),
            text: QpTemplate::new(&rendered.text),
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
        let mut message = builder
            .multipart(MultiPart::alternative_plain_html(
                Body::dangerous_pre_encoded(
                    self.text.fill(&values),
                    ContentTransferEncoding::QuotedPrintable,
                ),
                Body::dangerous_pre_encoded(
                    self.html.fill(&values),
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

//! One journal line: what it holds, how it is written and how it is checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The journal format this build writes and reads.
pub const VERSION: u32 = 2;

/// The oldest time a record may carry (2000-01-01).
const EARLIEST: f64 = 946_684_800.0;
/// Longest address, reply or name a record may hold, in bytes.
const MAX_FIELD: usize = 4096;

/// What a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The first line: which issue and list, and the fingerprint.
    Journal,
    /// The issue changed after some were sent and the user accepted it
    /// (`--accept-changes`): the new fingerprint.
    ChangesAccepted,
    /// About to hand the message to the transport.
    Attempt,
    /// The server accepted it (250).
    Accepted,
    /// Permanent failure (5xx): not retried unless asked.
    Failed,
    /// Temporary failures used up this run's retries: pending next run.
    Deferred,
    /// The connection was lost after the whole message was written: retried
    /// like a temporary failure, but the server may have kept a copy.
    Lost,
    /// The whole message was sent but no reply came: the server may have
    /// it. Like an attempt without an outcome, sent again only when asked.
    Uncertain,
}

impl Kind {
    fn is_recipient(self) -> bool {
        !matches!(self, Kind::Journal | Kind::ChangesAccepted)
    }
}

/// The SMTP step a permanent failure came at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Mail,
    Rcpt,
    Data,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
        }
    }
}

/// A hash of each part of what the messages say, by name (`subject`,
/// `html`, `text`, `greeting`, `sender`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(pub BTreeMap<String, String>);

impl Fingerprint {
    /// Adds a part: the first 16 bytes of its SHA-256, in hex.
    pub fn add(&mut self, name: &str, bytes: &[u8]) {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(bytes);
        self.0.insert(name.into(), hex::encode(&digest[..16]));
    }

    /// The names of the parts that differ from `other`.
    pub fn changed(&self, other: &Fingerprint) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .iter()
            .filter(|(name, hash)| other.0.get(*name) != Some(*hash))
            .map(|(name, _)| name.clone())
            .collect();
        names.extend(
            other
                .0
                .keys()
                .filter(|name| !self.0.contains_key(*name))
                .cloned(),
        );
        names
    }
}

/// What the first line says.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub issue: String,
    pub list: String,
    /// The subscriber file of the first run, as given.
    pub subscribers: String,
    pub fingerprint: Fingerprint,
    pub t: f64,
}

/// One line of the journal, as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Unix time in seconds.
    pub t: f64,
    pub event: Option<Kind>,
    /// Lowercased address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reply: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// The audiences in force (header and accepted changes), in words, for
    /// people reading the journal; the fingerprint is what is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// The checksum field's text: `,"crc":"` 8 hex digits `"}`.
const CRC_OPEN: &[u8] = b",\"crc\":\"";
const CRC_LEN: usize = CRC_OPEN.len() + 8 + 2;

impl Line {
    /// A recipient event.
    pub fn event(kind: Kind, key: &str, email: &str, reply: &str) -> Line {
        Line {
            t: super::now(),
            event: Some(kind),
            key: key.into(),
            email: email.into(),
            reply: reply.into(),
            ..Line::default()
        }
    }

    /// The first line of a new journal.
    pub fn header(header: &Header) -> Line {
        Line {
            t: header.t,
            event: Some(Kind::Journal),
            version: Some(VERSION),
            issue: Some(header.issue.clone()),
            list: Some(header.list.clone()),
            subscribers: Some(header.subscribers.clone()),
            fingerprint: Some(header.fingerprint.clone()),
            ..Line::default()
        }
    }

    /// The line that records accepted changes.
    pub fn changes_accepted(fingerprint: &Fingerprint) -> Line {
        Line {
            t: super::now(),
            event: Some(Kind::ChangesAccepted),
            fingerprint: Some(fingerprint.clone()),
            ..Line::default()
        }
    }

    pub fn kind(&self) -> Kind {
        self.event.unwrap_or(Kind::Attempt)
    }

    /// The line as written, checksum and newline included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        let crc = crc32fast::hash(&out);
        out.pop();
        out.extend_from_slice(CRC_OPEN);
        out.extend_from_slice(format!("{crc:08x}\"}}\n").as_bytes());
        out
    }

    /// Reads a line written by [`Line::encode`] (without its newline) and
    /// checks it; the error says what is wrong, in words.
    pub fn decode(raw: &[u8], now: f64) -> Result<Line, String> {
        let Some(split) = raw.len().checked_sub(CRC_LEN) else {
            return Err("it is cut short".into());
        };
        let (body, tail) = raw.split_at(split);
        let hex = tail
            .strip_prefix(CRC_OPEN)
            .and_then(|t| t.strip_suffix(b"\"}"))
            .ok_or("it has no checksum")?;
        // Lowercase only, as written: `A` for `a` is a changed byte too.
        let wanted = std::str::from_utf8(hex)
            .ok()
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or("its checksum is not a number")?;
        let mut json = Vec::with_capacity(body.len() + 1);
        json.extend_from_slice(body);
        json.push(b'}');
        if crc32fast::hash(&json) != wanted {
            return Err("its checksum does not match: it was changed or damaged".into());
        }
        let line: Line =
            serde_json::from_slice(&json).map_err(|e| format!("it cannot be read: {e}"))?;
        line.validate(now)?;
        Ok(line)
    }

    /// Values in range: a time between 2000 and tomorrow, an address and a
    /// reply of sane length and shape.
    fn validate(&self, now: f64) -> Result<(), String> {
        if !self.t.is_finite() || self.t < EARLIEST || self.t > now + 86_400.0 {
            return Err(format!(
                "its time `{}` is not between 2000 and tomorrow",
                self.t
            ));
        }
        let Some(kind) = self.event else {
            return Err("it has no `event`".into());
        };
        for (name, value) in [
            ("key", &self.key),
            ("email", &self.email),
            ("reply", &self.reply),
            ("audience", self.audience.as_ref().unwrap_or(&String::new())),
        ] {
            if value.len() > MAX_FIELD {
                return Err(format!("its `{name}` is {} bytes long", value.len()));
            }
        }
        if kind.is_recipient() {
            if self.key.is_empty() || self.key.chars().any(|c| c.is_control() || c == ' ') {
                return Err("its address is empty or has spaces or control characters".into());
            }
            if !self.email.is_empty() && self.email.to_lowercase() != self.key {
                return Err(format!(
                    "its address `{}` does not match its key `{}`",
                    self.email, self.key
                ));
            }
            if self.version.is_some()
                || self.issue.is_some()
                || self.fingerprint.is_some()
                || self.audience.is_some()
            {
                return Err("it mixes a recipient event with journal details".into());
            }
        } else if self.fingerprint.is_none() {
            return Err("it has no fingerprint".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_800_000_000.0;

    fn attempt() -> Line {
        Line {
            t: 1_700_000_000.5,
            ..Line::event(Kind::Attempt, "a@example.org", "A@example.org", "")
        }
    }

    fn decode(bytes: &[u8]) -> Result<Line, String> {
        Line::decode(bytes.strip_suffix(b"\n").unwrap_or(bytes), NOW)
    }

    #[test]
    fn a_line_reads_back_as_written() {
        let bytes = attempt().encode();
        assert!(
            bytes.ends_with(b"\"}\n"),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let line = decode(&bytes).unwrap();
        assert_eq!(line.key, "a@example.org");
        assert_eq!(line.kind(), Kind::Attempt);
    }

    #[test]
    fn a_flipped_byte_is_found() {
        let bytes = attempt().encode();
        for i in 0..bytes.len() - 1 {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert!(decode(&damaged).is_err(), "byte {i} flipped was accepted");
        }
    }

    #[test]
    fn times_out_of_range_are_refused() {
        for t in [-1e300, 0.0, NOW + 2.0 * 86_400.0] {
            let line = Line { t, ..attempt() };
            let err = decode(&line.encode()).unwrap_err();
            assert!(err.contains("time"), "{t}: {err}");
        }
        // JSON has no NaN: it is written as null, which does not read back.
        assert!(
            decode(
                &Line {
                    t: f64::NAN,
                    ..attempt()
                }
                .encode()
            )
            .is_err()
        );
    }

    #[test]
    fn an_address_that_does_not_match_its_key_is_refused() {
        let line = Line {
            email: "b@example.org".into(),
            ..attempt()
        };
        assert!(
            decode(&line.encode())
                .unwrap_err()
                .contains("does not match")
        );
    }

    #[test]
    fn unknown_fields_and_plain_json_are_refused() {
        assert!(decode(br#"{"t":1700000000,"event":"attempt","key":"a@example.org"}"#).is_err());
        let mut bytes = attempt().encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let extra = text.replacen("{", "{\"x\":1,", 1);
        bytes = extra.into_bytes();
        assert!(decode(&bytes).is_err());
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the reader.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = Line::decode(&bytes, NOW);
        }

        /// Every record written reads back the same, and any one changed
        /// byte is found.
        #[test]
        fn records_round_trip_and_changes_are_found(
            key in "[a-z0-9.+-]{1,20}@[a-z]{1,10}\\.(org|test)",
            reply in "[ -~]{0,60}",
            t in 946_684_800.0..1_799_999_999.0f64,
            flip in 0usize..200,
        ) {
            let line = Line { t, ..Line::event(Kind::Failed, &key, &key, &reply) };
            let bytes = line.encode();
            let back = decode(&bytes).unwrap();
            proptest::prop_assert_eq!(&back.key, &key);
            proptest::prop_assert_eq!(&back.reply, &reply);
            // serde_json reads floats to within one unit in the last place.
            proptest::prop_assert!((back.t - t).abs() < 1e-6);
            let at = flip % (bytes.len() - 1);
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            proptest::prop_assert!(decode(&damaged).is_err());
        }
    }

    #[test]
    fn fingerprint_names_what_changed() {
        let mut a = Fingerprint::default();
        a.add("subject", b"one");
        a.add("html", b"same");
        let mut b = a.clone();
        b.add("subject", b"two");
        assert_eq!(a.changed(&b), ["subject"]);
        assert!(a.changed(&a).is_empty());
    }
}

//! Which permanent failures say the *address* is bad.
//!
//! A 5xx reply is not always about the recipient: a message too big (552,
//! 5.3.4), refused content (554, 5.6.x) or a policy refusal (5.7.x) says
//! nothing about the address, and marking those addresses `bounced` would
//! drop people who can be reached. Only a refusal of the recipient itself
//! (at `RCPT TO`, or reported as such in a bounce report) counts.
//!
//! A whole run refused with the same words is a sending problem (the relay,
//! the sender's reputation, the message), not thousands of bad addresses:
//! [`shared_replies`] finds those replies.

use super::dsn::enhanced_status;
use super::is_policy_refusal;

pub use crate::journal::Stage;

/// Whether a permanent failure says the recipient's address is bad.
///
/// `stage` is the SMTP command that got `reply`; `None` for a failure
/// reported in a bounce report (pass `"STATUS DIAGNOSTIC"`, e.g. `5.1.1 550
/// 5.1.1 User unknown`). True only at `RCPT TO` (or `None`) and only for:
///
/// - an enhanced status 5.1.x (bad mailbox or destination: 5.1.1, 5.1.2,
///   5.1.10 …), except 5.1.7 and 5.1.8, which are about the *sender's*
///   address, and a 5.1.0 with policy wording;
/// - 5.2.1 (mailbox disabled);
/// - 5.4.4 (unable to route: the recipient's domain does not exist, as
///   Postfix reports it);
/// - with no enhanced status, or only the undefined `5.0.0`, a plain 550,
///   551 or 553 reply without policy wording (`550 No such user`).
///
/// Never at `MAIL FROM` or `DATA`, and never for 552 (too big), 554
/// (transaction failed), 5.3.x, 5.6.x or 5.7.x.
pub fn is_address_failure(stage: Option<Stage>, reply: &str) -> bool {
    if matches!(stage, Some(Stage::Mail | Stage::Data)) || is_policy_refusal(reply) {
        return false;
    }
    match specific_status(reply) {
        Some(status) => is_address_status(status, reply),
        None => {
            matches!(reply_code(reply), Some("550" | "551" | "553")) && !has_policy_words(reply)
        }
    }
}

/// Whether an enhanced status (not `X.0.0`) is about the recipient's address.
fn is_address_status(status: &str, reply: &str) -> bool {
    match status {
        "5.1.7" | "5.1.8" => false,
        "5.1.0" => !has_policy_words(reply),
        "5.2.1" | "5.4.4" => true,
        _ => status.starts_with("5.1."),
    }
}

/// Why a permanent failure does not mark the address, for people: the
/// counterpart of [`is_address_failure`] (meant for failures it refuses).
pub fn why_not_address(stage: Option<Stage>, reply: &str) -> &'static str {
    let status = specific_status(reply).unwrap_or_default();
    match stage {
        Some(Stage::Mail) => return "refused at MAIL FROM, which is about the sender",
        Some(Stage::Data) if !status.starts_with("5.7.") => {
            return "refused after the message was sent, which is about the message";
        }
        _ => {}
    }
    if status.starts_with("5.7.") || is_policy_refusal(reply) {
        return "a policy refusal, about the sender or the content rather than the address";
    }
    match status {
        "5.3.4" | "5.2.3" => "the message is too big for the receiving server",
        "5.2.2" => "the mailbox is full, which may pass",
        "5.1.7" | "5.1.8" => "the sender's address was refused, not the recipient's",
        _ if status.starts_with("5.6.") => "the message's content or encoding was refused",
        _ if status.starts_with("5.3.") => "a problem of the receiving mail system",
        _ if status.starts_with("5.4.") => "a network or routing problem",
        _ if status.starts_with("5.5.") => "a protocol error between the mail servers",
        _ => match reply_code(reply) {
            Some("552") => "552: the message is too big or the mailbox is over its limit",
            Some("554") => "554: the transaction failed, which does not say the address is bad",
            _ if has_policy_words(reply) => {
                "the reply reads as a policy refusal rather than a bad address"
            }
            _ => "a permanent failure that does not say the address is bad",
        },
    }
}

/// The first enhanced status in `reply` that says more than `X.0.0`.
fn specific_status(reply: &str) -> Option<&str> {
    reply
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '(' | ')' | ',' | '-'))
        .filter_map(enhanced_status)
        .find(|status| !status.ends_with(".0.0"))
}

/// The first three-digit SMTP reply code in `reply` (`550`, or `550` of
/// `550-…`).
fn reply_code(reply: &str) -> Option<&str> {
    reply.split_whitespace().find_map(|word| {
        let code = word.split('-').next().unwrap_or_default();
        (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
    })
}

/// Words that make a plain 5xx a refusal of the sender or the message.
const POLICY_STEMS: &[&str] = &[
    "spam",
    "policy",
    "block",
    "blacklist",
    "denylist",
    "reputation",
    "authenticat",
    "relay",
    "rcpthosts",
    "prohibit",
    "denied",
    "abuse",
    "virus",
    "malware",
    "content",
    "too many",
    "rate limit",
    "sender",
    "reverse dns",
];

/// Short words matched whole (`spf`, not in `spfoo`).
const POLICY_WORDS: &[&str] = &["spf", "dkim", "dmarc", "rbl", "dnsbl", "helo", "ptr", "tls"];

/// Whether a reply reads as a policy refusal rather than a bad address.
fn has_policy_words(reply: &str) -> bool {
    let lower = reply.to_lowercase();
    POLICY_STEMS.iter().any(|stem| lower.contains(stem))
        || lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|word| POLICY_WORDS.contains(&word))
}

/// How many failures with the same reply make it a shared one, at least.
pub const SHARED_AT_LEAST: usize = 10;

/// Replies that a large part of a run's failures share: groups of failures
/// (address, reply) by [`normalise_reply`] that hold at least
/// [`SHARED_AT_LEAST`] failures *and* more than 10% of all of them, most
/// failures first. Such a reply is a sending problem, not bad addresses.
pub fn shared_replies<E: AsRef<str>, R: AsRef<str>>(failures: &[(E, R)]) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (email, reply) in failures {
        *counts
            .entry(normalise_reply(email.as_ref(), reply.as_ref()))
            .or_default() += 1;
    }
    let total = failures.len();
    let mut shared: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|&(_, count)| count >= SHARED_AT_LEAST && count * 10 > total)
        .collect();
    shared.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    shared
}

/// `reply` without the recipient's address `email` (any case, with or
/// without `<>` around it) and with runs of whitespace made one space, so
/// that the same words to different recipients compare equal. Case is
/// folded for ASCII letters only.
pub fn normalise_reply(email: &str, reply: &str) -> String {
    let email = email.trim();
    let mut text = reply.to_string();
    if !email.is_empty() {
        text = remove_ignoring_case(&text, &format!("<{email}>"));
        text = remove_ignoring_case(&text, email);
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` without any occurrence of `needle`, ASCII case ignored. Matches
/// start and end on character boundaries: only ASCII bytes are folded, and
/// the needle's bytes are whole characters.
fn remove_ignoring_case(text: &str, needle: &str) -> String {
    let (bytes, wanted) = (text.as_bytes(), needle.as_bytes());
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut at) = (0, 0);
    while at + wanted.len() <= bytes.len() {
        if bytes[at..at + wanted.len()].eq_ignore_ascii_case(wanted) {
            out.push_str(&text[copied..at]);
            at += wanted.len();
            copied = at;
        } else {
            at += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RCPT: Option<Stage> = Some(Stage::Rcpt);

    // ------------------------------------------- is_address_failure: yes

    #[test]
    fn rcpt_5_1_1_user_unknown_is_an_address_failure() {
        assert!(is_address_failure(
            RCPT,
            "550 5.1.1 <jose.garcia@example.org>: Recipient address rejected: User unknown"
        ));
    }

    #[test]
    fn rcpt_5_1_10_recipient_not_found_is_an_address_failure() {
        assert!(is_address_failure(
            RCPT,
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
        ));
    }

    #[test]
    fn a_multi_line_gmail_5_1_1_is_an_address_failure() {
        assert!(is_address_failure(
            RCPT,
            "550-5.1.1 The email account that you tried to reach does not exist."
        ));
    }

    #[test]
    fn rcpt_5_1_2_bad_destination_domain_is_an_address_failure() {
        assert!(is_address_failure(
            RCPT,
            "550 5.1.2 Host unknown: the domain does not exist"
        ));
    }

    #[test]
    fn rcpt_5_2_1_mailbox_disabled_is_an_address_failure() {
        assert!(is_address_failure(
            RCPT,
            "550 5.2.1 Mailbox disabled, not accepting messages"
        ));
    }

    #[test]
    fn rcpt_plain_550_is_an_address_failure() {
        assert!(is_address_failure(RCPT, "550 No such user here"));
    }

    #[test]
    fn rcpt_plain_551_user_not_local_is_an_address_failure() {
        assert!(is_address_failure(
            RCPT,
            "551 User not local; please try <zoe@example.net>"
        ));
    }

    #[test]
    fn rcpt_plain_553_mailbox_name_not_allowed_is_an_address_failure() {
        assert!(is_address_failure(
            RCPT,
            "553 Requested action not taken: mailbox name not allowed"
        ));
    }

    #[test]
    fn a_report_with_status_5_1_1_is_an_address_failure() {
        assert!(is_address_failure(None, "5.1.1 550 5.1.1 User unknown"));
    }

    #[test]
    fn a_report_with_status_5_0_0_and_a_plain_550_is_an_address_failure() {
        assert!(is_address_failure(None, "5.0.0 550 Unrouteable address"));
    }

    #[test]
    fn a_report_with_status_5_4_4_domain_not_found_is_an_address_failure() {
        assert!(is_address_failure(
            None,
            "5.4.4 Host or domain name not found. Name service error for name=supporters.test type=AAAA: Host not found"
        ));
    }

    // -------------------------------------------- is_address_failure: no

    #[test]
    fn the_mail_stage_is_never_an_address_failure() {
        assert!(!is_address_failure(
            Some(Stage::Mail),
            "550 5.1.1 User unknown"
        ));
        assert!(!is_address_failure(Some(Stage::Mail), "550 No such user"));
    }

    #[test]
    fn the_data_stage_is_never_an_address_failure() {
        assert!(!is_address_failure(
            Some(Stage::Data),
            "550 5.1.1 User unknown"
        ));
        assert!(!is_address_failure(Some(Stage::Data), "550 No such user"));
    }

    #[test]
    fn rcpt_552_message_too_big_is_not_an_address_failure() {
        assert!(!is_address_failure(
            RCPT,
            "552 Message size exceeds fixed maximum message size"
        ));
    }

    #[test]
    fn rcpt_554_transaction_failed_is_not_an_address_failure() {
        assert!(!is_address_failure(RCPT, "554 Transaction failed"));
    }

    #[test]
    fn a_report_with_5_3_4_message_too_big_is_not_an_address_failure() {
        assert!(!is_address_failure(
            None,
            "5.3.4 552 5.3.4 Message size exceeds fixed limit"
        ));
    }

    #[test]
    fn a_5_6_x_content_refusal_is_not_an_address_failure() {
        assert!(!is_address_failure(
            RCPT,
            "554 5.6.0 Message contains invalid header"
        ));
        assert!(!is_address_failure(
            None,
            "5.6.1 554 5.6.1 Media not supported"
        ));
    }

    #[test]
    fn a_5_7_x_policy_refusal_is_not_an_address_failure() {
        assert!(!is_address_failure(
            RCPT,
            "550 5.7.1 Service unavailable; client host blocked using Spamhaus"
        ));
        assert!(!is_address_failure(None, "5.7.26 550 5.7.26 DMARC policy"));
    }

    #[test]
    fn a_report_with_status_5_0_0_hiding_a_5_7_1_is_not_an_address_failure() {
        assert!(!is_address_failure(
            None,
            "5.0.0 550 5.7.1 Message rejected as spam"
        ));
    }

    #[test]
    fn sender_address_codes_5_1_7_and_5_1_8_are_not_address_failures() {
        assert!(!is_address_failure(
            RCPT,
            "553 5.1.7 The sender address is invalid"
        ));
        assert!(!is_address_failure(
            RCPT,
            "550 5.1.8 Sender address rejected: Domain not found"
        ));
    }

    #[test]
    fn a_5_1_0_about_the_sender_is_not_an_address_failure() {
        assert!(!is_address_failure(RCPT, "550 5.1.0 Sender denied"));
        assert!(is_address_failure(RCPT, "550 5.1.0 Address rejected"));
    }

    #[test]
    fn a_plain_550_with_policy_wording_is_not_an_address_failure() {
        for reply in [
            "550 Message rejected because it looks like spam",
            "550 Relaying denied",
            "550 Administrative prohibition",
            "550 Your IP is listed on an RBL",
            "553 sorry, that domain isn't in my list of allowed rcpthosts",
            "550 SPF check failed",
        ] {
            assert!(!is_address_failure(RCPT, reply), "{reply}");
        }
    }

    #[test]
    fn a_5_2_2_mailbox_full_is_not_an_address_failure() {
        assert!(!is_address_failure(
            RCPT,
            "552 5.2.2 Mailbox full: quota exceeded"
        ));
    }

    #[test]
    fn a_transient_4_1_1_is_not_an_address_failure() {
        assert!(!is_address_failure(
            RCPT,
            "450 4.1.1 Recipient address unverified"
        ));
        assert!(!is_address_failure(RCPT, "450 Mailbox unavailable"));
    }

    #[test]
    fn a_reply_without_a_code_is_not_an_address_failure() {
        assert!(!is_address_failure(RCPT, "connection closed"));
        assert!(!is_address_failure(None, "5.0.0 Host not found"));
    }

    // ------------------------------------------------------ why_not_address

    #[test]
    fn reasons_name_what_the_failure_was_about() {
        assert_eq!(
            why_not_address(None, "5.3.4 552 5.3.4 Message size exceeds fixed limit"),
            "the message is too big for the receiving server"
        );
        assert!(why_not_address(RCPT, "550 5.7.1 spam").starts_with("a policy refusal"));
        assert!(why_not_address(Some(Stage::Data), "550 5.1.1 x").contains("about the message"));
        assert!(why_not_address(Some(Stage::Mail), "550 5.1.1 x").contains("about the sender"));
        assert!(why_not_address(None, "5.6.0 bad header").contains("content"));
        assert!(why_not_address(RCPT, "554 Transaction failed").starts_with("554"));
    }

    // ------------------------------------------------------- shared_replies

    /// `n` failures to `p{i}@example.org` with `reply(address)`.
    fn failures(n: usize, reply: impl Fn(&str) -> String) -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                let address = format!("p{i}@example.org");
                let text = reply(&address);
                (address, text)
            })
            .collect()
    }

    #[test]
    fn a_reply_shared_by_a_whole_run_is_found_without_the_addresses() {
        let found = shared_replies(&failures(40, |a| {
            format!("554 5.7.1 <{a}>: Relay access denied")
        }));
        assert_eq!(found, [("554 5.7.1 : Relay access denied".to_string(), 40)]);
    }

    #[test]
    fn the_address_is_removed_in_any_case_with_or_without_brackets() {
        assert_eq!(
            normalise_reply(
                "Zoe@Example.org",
                "550 <ZOE@example.ORG> no; zoe@example.org gone"
            ),
            "550 no; gone"
        );
    }

    #[test]
    fn whitespace_is_collapsed() {
        assert_eq!(
            normalise_reply("a@example.org", "  550\t5.7.1\r\n  blocked  "),
            "550 5.7.1 blocked"
        );
    }

    #[test]
    fn an_address_with_non_ascii_text_around_it_is_removed_safely() {
        assert_eq!(
            normalise_reply("li@example.org", "550 “li@example.org” 邮箱不存在"),
            "550 “” 邮箱不存在"
        );
    }

    #[test]
    fn fewer_than_ten_alike_are_not_shared_even_if_they_are_all() {
        assert!(shared_replies(&failures(9, |_| "554 5.7.1 blocked".to_string())).is_empty());
    }

    #[test]
    fn exactly_ten_alike_and_more_than_ten_percent_are_shared() {
        let mut all = failures(10, |_| "554 5.7.1 blocked".to_string());
        all.extend((0..30).map(|i| {
            (
                format!("q{i}@example.org"),
                format!("550 5.1.1 user {i} unknown"),
            )
        }));
        assert_eq!(
            shared_replies(&all),
            [("554 5.7.1 blocked".to_string(), 10)]
        );
    }

    #[test]
    fn ten_percent_or_less_is_not_shared() {
        let mut all = failures(10, |_| "554 5.7.1 blocked".to_string());
        // 90 different replies: 10 of 100 is not more than 10%.
        all.extend((0..90).map(|i| (format!("q{i}@example.org"), format!("550 no user {i}"))));
        assert!(shared_replies(&all).is_empty());
        all.push(("r@example.org".into(), "554  5.7.1 blocked".into()));
        assert_eq!(
            shared_replies(&all),
            [("554 5.7.1 blocked".to_string(), 11)]
        );
    }

    #[test]
    fn several_shared_replies_come_most_first() {
        let mut all = failures(12, |_| "421 too many connections".to_string());
        all.extend(failures(20, |a| format!("550 5.7.1 <{a}> blocked")));
        assert_eq!(
            shared_replies(&all),
            [
                ("550 5.7.1 blocked".to_string(), 20),
                ("421 too many connections".to_string(), 12)
            ]
        );
    }

    #[test]
    fn no_failures_share_nothing() {
        assert!(shared_replies::<&str, &str>(&[]).is_empty());
    }

    #[test]
    fn borrowed_pairs_work_too() {
        let pairs: Vec<(&str, &str)> = (0..10).map(|_| ("a@example.org", "554 no")).collect();
        assert_eq!(shared_replies(&pairs), [("554 no".to_string(), 10)]);
    }
}

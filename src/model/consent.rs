//! Opt-out and consent columns of CRM and mailing-tool exports.
//!
//! A list exported from a CRM often has no `status` column but says who
//! opted out elsewhere: `Unsubscribed = yes`, Salesforce's `Email Opt Out`
//! (`HasOptedOutOfEmail`), HubSpot's `Unsubscribed from all email`,
//! Dynamics' `Do not allow Bulk Emails` (`donotbulkemail`), Mailchimp's
//! `UNSUB_TIME`, Shopify's `Accepts Email Marketing`, or a `consent` column.
//! Such a column is recognised by its (normalised) name; its cells are read
//! as yes/no, and one that cannot be read stops the run, because guessing
//! wrong mails someone who opted out.

/// What a recognised column says about mailing a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Yes means "do not mail" (`opt_out`, `unsubscribed`, `do_not_email`).
    OptOut,
    /// Yes means "may be mailed" (`consent`, `accepts_email_marketing`).
    Consent,
    /// Any value (a date) means "opted out then" (`unsub_time`).
    OptOutTime,
}

/// Names (after [`crate::model::subscribers`]' normalisation: lowercase, words
/// joined by `_`) of opt-out columns.
const OPT_OUT: &[&str] = &[
    "unsubscribed",
    "unsubscribe",
    "opt_out",
    "optout",
    "opted_out",
    "email_opt_out",
    "email_optout",
    "emailoptout",
    "hasoptedoutofemail",
    "has_opted_out_of_email",
    "do_not_email",
    "donotemail",
    "do_not_mail",
    "do_not_contact",
    "donotbulkemail",
    "do_not_allow_bulk_emails",
    "do_not_allow_emails",
    "hs_email_optout",
    "unsubscribed_from_all_email",
    "opted_out_of_all_email",
    "email_unsubscribed",
    "is_unsubscribed",
    "no_email",
];

/// Names of consent columns.
const CONSENT: &[&str] = &[
    "consent",
    "email_consent",
    "marketing_consent",
    "gdpr_consent",
    "newsletter_consent",
    "opt_in",
    "optin",
    "opted_in",
    "email_opt_in",
    "accepts_marketing",
    "accepts_email_marketing",
    "email_marketing_consent",
];

/// Names of columns that hold when someone opted out.
const OPT_OUT_TIME: &[&str] = &[
    "unsub_time",
    "unsubscribed_at",
    "unsubscribe_date",
    "unsubscribed_date",
    "opt_out_date",
    "opted_out_at",
];

/// What a column named `normalised` means, if it is an opt-out or consent
/// column.
pub fn meaning(normalised: &str) -> Option<Meaning> {
    if OPT_OUT.contains(&normalised) {
        Some(Meaning::OptOut)
    } else if CONSENT.contains(&normalised) {
        Some(Meaning::Consent)
    } else if OPT_OUT_TIME.contains(&normalised) {
        Some(Meaning::OptOutTime)
    } else {
        None
    }
}

/// Reads a yes/no cell: `Some(true)` yes, `Some(false)` no, `None` empty;
/// `Err` when it is neither.
fn yes_no(cell: &str) -> Result<Option<bool>, ()> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(None);
    }
    const YES: &[&str] = &["yes", "y", "true", "t", "1", "x"];
    const NO: &[&str] = &["no", "n", "false", "f", "0"];
    if YES.iter().any(|v| cell.eq_ignore_ascii_case(v)) {
        Ok(Some(true))
    } else if NO.iter().any(|v| cell.eq_ignore_ascii_case(v)) {
        Ok(Some(false))
    } else {
        Err(())
    }
}

/// Whether a cell of such a column opts the row out. An empty cell says
/// nothing (the row follows its `status`); `Err` when the value cannot be
/// read, with what the column accepts.
pub fn opts_out(meaning: Meaning, cell: &str) -> Result<bool, &'static str> {
    // Words that say what the person chose mean the same in any column.
    const OUT: &[&str] = &[
        "unsubscribed",
        "unsubscribe",
        "opted out",
        "opted-out",
        "opt out",
        "opt-out",
        "withdrawn",
        "declined",
        "refused",
    ];
    const IN: &[&str] = &[
        "subscribed",
        "opted in",
        "opted-in",
        "opt in",
        "opt-in",
        "granted",
        "given",
    ];
    let word = cell.trim();
    if meaning != Meaning::OptOutTime {
        if OUT.iter().any(|w| word.eq_ignore_ascii_case(w)) {
            return Ok(true);
        }
        if IN.iter().any(|w| word.eq_ignore_ascii_case(w)) {
            return Ok(false);
        }
    }
    match meaning {
        Meaning::OptOut => yes_no(cell)
            .map(|v| v == Some(true))
            .map_err(|()| "write `yes` (do not mail) or `no`, `true` or `false`, `1` or `0`"),
        Meaning::Consent => yes_no(cell)
            .map(|v| v == Some(false))
            .map_err(|()| "write `yes` (may be mailed) or `no`, `true` or `false`, `1` or `0`"),
        Meaning::OptOutTime => Ok(!cell.trim().is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crm_column_names_are_recognised() {
        for name in [
            "unsubscribed",
            "opt_out",
            "optout",
            "email_opt_out",
            "do_not_email",
            "hasoptedoutofemail",
            "donotbulkemail",
        ] {
            assert_eq!(meaning(name), Some(Meaning::OptOut), "{name}");
        }
        assert_eq!(meaning("consent"), Some(Meaning::Consent));
        assert_eq!(meaning("unsub_time"), Some(Meaning::OptOutTime));
        assert_eq!(meaning("city"), None);
    }

    #[test]
    fn opt_out_yes_and_consent_no_opt_out() {
        assert_eq!(opts_out(Meaning::OptOut, " Yes "), Ok(true));
        assert_eq!(opts_out(Meaning::OptOut, "0"), Ok(false));
        assert_eq!(opts_out(Meaning::OptOut, ""), Ok(false));
        assert_eq!(opts_out(Meaning::Consent, "no"), Ok(true));
        assert_eq!(opts_out(Meaning::Consent, "TRUE"), Ok(false));
        assert_eq!(opts_out(Meaning::Consent, ""), Ok(false));
        assert_eq!(opts_out(Meaning::OptOutTime, "2024-01-02 10:00"), Ok(true));
    }

    #[test]
    fn words_of_choice_mean_the_same_in_any_column() {
        for meaning in [Meaning::OptOut, Meaning::Consent] {
            assert_eq!(opts_out(meaning, "Unsubscribed"), Ok(true), "{meaning:?}");
            assert_eq!(opts_out(meaning, "opted out"), Ok(true), "{meaning:?}");
            assert_eq!(opts_out(meaning, "withdrawn"), Ok(true), "{meaning:?}");
            assert_eq!(opts_out(meaning, "subscribed"), Ok(false), "{meaning:?}");
            assert_eq!(opts_out(meaning, "opted in"), Ok(false), "{meaning:?}");
        }
    }

    #[test]
    fn a_value_that_is_not_yes_or_no_is_an_error() {
        assert!(opts_out(Meaning::OptOut, "maybe").is_err());
        assert!(opts_out(Meaning::Consent, "pending").is_err());
    }
}

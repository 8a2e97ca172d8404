//! `newsletter unsubscribe ADDRESS_OR_URL... | --from-file FILE`: sets
//! `status` to `unsubscribed` in the subscriber CSV.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};

use crate::model::subscribers::SubscriptionStatus;
use crate::status_column;
use crate::token::Signer;
use crate::unsubscribe::{link, log};

/// One input line or argument, understood.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// An address, lowercased.
    Address(String),
    /// Not usable; why, for the user.
    Rejected(String),
}

/// Reads an argument or a line: an address, an unsubscribe URL (or bare
/// token), or a line of the endpoint's log. `signer` is needed for links.
pub fn understand(text: &str, signer: Option<&Signer>) -> Input {
    let text = text.trim();
    let address = |a: &str| match a.parse::<lettre::Address>() {
        Ok(_) => Input::Address(a.to_lowercase()),
        Err(_) => Input::Rejected(format!("`{}` is not an email address", shorten(a))),
    };
    if text.contains('\t') {
        return match log::address_in(text) {
            Some(a) => address(a),
            None => Input::Rejected(
                "a line with tabs that is not `TIME<TAB>ADDRESS<TAB>one-click` from the unsubscribe log"
                    .to_string(),
            ),
        };
    }
    if text.contains('@') && !text.contains('/') {
        return address(text);
    }
    if text.contains(char::is_whitespace) {
        return Input::Rejected(format!(
            "`{}` is not an address, an unsubscribe link or a line of the unsubscribe log",
            shorten(text)
        ));
    }
    let Some(signer) = signer else {
        return Input::Rejected(
            "links cannot be checked: the unsubscribe secret (`unsubscribe-secret-env`) is not set"
                .to_string(),
        );
    };
    match link::check(signer, &link::token_in(text)) {
        Ok(a) => Input::Address(a),
        Err(refused) => Input::Rejected(format!("`{}`: {refused}", shorten(text))),
    }
}

/// Long inputs are cut when quoted back.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 120 {
        return text.to_string();
    }
    let mut out: String = text.chars().take(120).collect();
    out.push('…');
    out
}

/// Lines of a `--from-file` file, without blank lines and `#` comments, with
/// their line numbers.
pub fn lines_of(path: &Path) -> Result<Vec<(usize, String)>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read `{}`: check the path", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            (
                i + 1,
                line.trim().trim_start_matches('\u{feff}').to_string(),
            )
        })
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect())
}

/// Applies the inputs to `list`; returns whether every input was usable.
pub fn run(
    list: &Path,
    arguments: &[String],
    from_file: Option<&Path>,
    signer: Option<&Signer>,
) -> Result<bool> {
    let mut addresses = BTreeSet::new();
    let mut rejected = Vec::new();
    let mut take = |place: String, text: &str| match understand(text, signer) {
        Input::Address(a) => {
            addresses.insert(a);
        }
        Input::Rejected(why) => rejected.push(format!("{place}{why}")),
    };
    for argument in arguments {
        take(String::new(), argument);
    }
    if let Some(path) = from_file {
        for (line, text) in lines_of(path)? {
            take(format!("{} line {line}: ", path.display()), &text);
        }
    }
    for why in &rejected {
        eprintln!("not applied: {why}");
    }
    let outcome = status_column::set(list, &addresses, SubscriptionStatus::Unsubscribed)?;
    outcome.print(list);
    if !rejected.is_empty() {
        eprintln!(
            "{} input(s) were not applied (listed above); the others were",
            rejected.len()
        );
    }
    Ok(rejected.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn understands_each_kind_of_line() {
        let signer = Signer::new("list.example.org", b"secret");
        let url = format!(
            "https://news.example.org/unsubscribe/{}",
            signer.token("Ann@Example.org")
        );
        let read = |text: &str| understand(text, Some(&signer));
        assert_eq!(read(&url), Input::Address("ann@example.org".into()));
        assert_eq!(
            read(" Bo@Example.ORG "),
            Input::Address("bo@example.org".into())
        );
        assert_eq!(
            read("2024-05-01T09:30:00Z\tcy@example.org\tone-click"),
            Input::Address("cy@example.org".into())
        );
        assert!(matches!(read("not-an-address@"), Input::Rejected(_)));
        assert!(
            matches!(read("https://news.example.org/unsubscribe/abc"), Input::Rejected(why) if why.contains("malformed"))
        );
        assert!(matches!(understand(&url, None), Input::Rejected(_)));
    }
}

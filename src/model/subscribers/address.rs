//! Address and cell checks: what an address must look like, and cleaning the
//! text of names and merge fields.

use std::str::FromStr;

use super::MAX_SHOWN_CHARS;
use anyhow::Result;

/// Checks an address (already trimmed); `Err` holds the reason, for the user.
pub(super) fn check_address(email: &str) -> Result<(), String> {
    if email.is_empty() {
        return Err("the `email` cell is empty; fill it in or delete the row".into());
    }
    if let (Some(open), Some(close)) = (email.find('<'), email.rfind('>'))
        && open < close
    {
        let inner = email[open + 1..close].trim();
        return Err(format!(
            "it has a name and `<…>` around the address; keep only the address `{}`",
            shorten(inner)
        ));
    }
    if email.contains(['<', '>']) {
        return Err("it contains `<` or `>`; remove them".into());
    }
    if email.chars().any(invisible) {
        return Err("it contains a line break or another invisible character; retype it".into());
    }
    if email.chars().any(char::is_whitespace) {
        return Err("it contains a space (maybe an invisible one); remove it".into());
    }
    let Some((user, domain)) = email.split_once('@') else {
        return Err("it has no `@`".into());
    };
    if domain.contains('@') {
        return Err("it has more than one `@`".into());
    }
    if user.is_empty() {
        return Err("nothing comes before the `@`".into());
    }
    if domain.is_empty() {
        return Err("nothing comes after the `@`".into());
    }
    if domain.ends_with('.') {
        return Err(format!(
            "the domain `{}` ends with a dot; remove it",
            shorten(domain)
        ));
    }
    if domain.starts_with('.') || domain.contains("..") {
        return Err(format!(
            "the domain `{}` has two dots in a row or starts with a dot",
            shorten(domain)
        ));
    }
    if let Some(bad) = domain
        .chars()
        .find(|c| c.is_ascii() && !c.is_ascii_alphanumeric() && !matches!(c, '.' | '-'))
    {
        return Err(format!(
            "the domain `{}` contains `{bad}`, which no domain name has; check it for typos",
            shorten(domain)
        ));
    }
    if !domain.contains('.') && !domain.eq_ignore_ascii_case("localhost") {
        return Err(format!(
            "the domain `{}` has no dot; it should look like `example.org`",
            shorten(domain)
        ));
    }
    match lettre::Address::from_str(email) {
        Ok(_) => Ok(()),
        Err(lettre::address::AddressError::InvalidUser) => Err(format!(
            "the part before the `@` (`{}`) is not valid; check it for typos",
            shorten(user)
        )),
        Err(lettre::address::AddressError::InvalidDomain) => Err(format!(
            "the domain `{}` is not valid; check it for typos",
            shorten(domain)
        )),
        Err(_) => Err("it is not a valid address; check it for typos".into()),
    }
}

/// Control, zero-width and bidi characters: never part of a real address, often
/// pasted along with one.
pub(super) fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Makes a cell safe for mail headers: every control character (Unicode category Cc,
/// which includes CR, LF, TAB and U+0085) and U+2028/U+2029 becomes one space, the
/// result is trimmed and cut to `max` characters.
///
/// This is what prevents header injection through names and merge fields: no line
/// break can reach a header. lettre also encodes header values, but we do not rely on
/// that alone.
pub(super) fn clean_value(raw: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut after_control = false;
    for c in raw.chars() {
        // Bidi controls reorder what follows them (a name could make the
        // greeting or `To` read backwards): dropped.
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
        {
            continue;
        }
        let control = c.is_control() || c == '\u{2028}' || c == '\u{2029}';
        if control && after_control {
            continue;
        }
        after_control = control;
        let c = if control { ' ' } else { c };
        if out.is_empty() && c.is_whitespace() {
            continue;
        }
        if chars == max {
            break;
        }
        out.push(c);
        chars += 1;
    }
    out.truncate(out.trim_end().len());
    out
}

/// A cell value short enough to quote in a message, with controls made visible.
pub(super) fn shorten(value: &str) -> String {
    let mut out = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

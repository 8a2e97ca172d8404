//! Unsubscribe links: finding the token in a URL and checking it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::token::Signer;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not shaped like a token at all (cut short, mangled); the reason.
    Malformed(String),
    /// A well-formed token whose signature does not match: another list's
    /// secret, or forged.
    NotSigned { address: String },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Malformed(why) => write!(
                f,
                "the unsubscribe token is malformed ({why}); copy the whole link from the email"
            ),
            Refused::NotSigned { address } => write!(
                f,
                "this link was not made with this list's secret (it names `{address}`); check that the secret variable holds the secret the issue was sent with"
            ),
        }
    }
}

/// The token in an unsubscribe URL: a `token=` query parameter, else the
/// last path segment. Anything without `/` or `?` is taken as a bare token.
pub fn token_in(input: &str) -> String {
    let input = input.trim();
    let input = input.split_once('#').map_or(input, |(before, _)| before);
    if !input.contains(['/', '?']) {
        return percent_decode(input);
    }
    let (path, query) = input.split_once('?').unwrap_or((input, ""));
    if let Some(value) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
    {
        return percent_decode(value);
    }
    let path = path.trim_end_matches('/');
    percent_decode(path.rsplit('/').next().unwrap_or(path))
}

/// The address a token was made for, or why it is refused.
pub fn check(signer: &Signer, token: &str) -> Result<String, Refused> {
    if let Some(address) = signer.verify(token) {
        return Ok(address);
    }
    let malformed = |why: &str| Err(Refused::Malformed(why.to_string()));
    if token.is_empty() {
        return malformed("there is none");
    }
    let Some((address, signature)) = token.split_once('.') else {
        return malformed("it has no `.`");
    };
    let Some(address) = URL_SAFE_NO_PAD
        .decode(address)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|a| a.contains('@'))
    else {
        return malformed("its first part is not an encoded address");
    };
    match URL_SAFE_NO_PAD.decode(signature) {
        Ok(bytes) if bytes.len() == 32 => Err(Refused::NotSigned {
            address: shown(&address),
        }),
        _ => malformed("its signature is cut short or damaged"),
    }
}

/// An address from a token, safe to print: at most 100 characters, no
/// control characters.
fn shown(address: &str) -> String {
    let mut out: String = address
        .chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if address.chars().count() > 100 {
        out.push('…');
    }
    out
}

/// Decodes `%XX` escapes; bytes that do not form UTF-8 are replaced.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token() {
        assert_eq!(
            token_in("https://x.example.org/unsubscribe/abc.def"),
            "abc.def"
        );
        assert_eq!(token_in("https://x.example.org/u/abc.def/#top"), "abc.def");
        assert_eq!(
            token_in("https://x.example.org/u?list=1&token=abc%2Edef"),
            "abc.def"
        );
        assert_eq!(token_in("  abc.def\n"), "abc.def");
    }

    #[test]
    fn tells_forged_from_malformed() {
        let signer = Signer::new("list.example.org", b"secret");
        let token = signer.token("Ann@Example.org");
        assert_eq!(check(&signer, &token).as_deref(), Ok("ann@example.org"));
        let other = Signer::new("list.example.org", b"other").token("ann@example.org");
        assert!(matches!(
            check(&signer, &other),
            Err(Refused::NotSigned { address }) if address == "ann@example.org"
        ));
        for bad in ["", "nodot", "!!.abc", &token[..token.len() - 4]] {
            assert!(
                matches!(check(&signer, bad), Err(Refused::Malformed(_))),
                "{bad}"
            );
        }
    }
}

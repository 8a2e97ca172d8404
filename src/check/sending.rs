//! The configuration as a send would use it: `[smtp]` settings that the
//! outbox transport ignores (`smtp-ignored-in-outbox`), and addresses
//! and footer links left on the domains reserved for examples
//! (`example-address`) when mail really goes out through an SMTP relay.

use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::model::config::{Config, Transport, is_loopback};
use crate::model::finding::Finding;
use crate::model::toml_file::Source;

/// Both lints, each a warning at the line it is about.
pub fn lint(config: &Config) -> Vec<Finding> {
    // The file was read a moment ago to load it; without it now there are
    // just no line numbers.
    let source = Source::read(&config.path).ok();
    let root = source
        .as_ref()
        .and_then(|s| DeTable::parse(&s.text).ok())
        .map(Spanned::into_inner);
    let line = |table: &str, key: Option<&str>| -> Option<usize> {
        let (source, root) = (source.as_ref()?, root.as_ref()?);
        let (name, item) = root.iter().find(|(k, _)| k.get_ref() == table)?;
        let offset = match (key, item.get_ref()) {
            (None, _) => name.span().start,
            (Some(key), DeValue::Table(t)) => {
                t.iter().find(|(k, _)| k.get_ref() == key)?.0.span().start
            }
            _ => return None,
        };
        Some(source.line(offset))
    };
    let at = |finding: Finding, line: Option<usize>| match line {
        Some(line) => finding.at_line(line),
        None => finding,
    };
    let mut findings = Vec::new();
    match &config.transport {
        Transport::Outbox { dir } => {
            if root
                .as_ref()
                .is_some_and(|r| r.iter().any(|(k, _)| k.get_ref() == "smtp"))
            {
                findings.push(at(smtp_ignored(&config.path, dir), line("smtp", None)));
            }
        }
        Transport::Smtp(smtp) if !is_loopback(&smtp.host) => {
            for (key, value, domain) in example_values(config) {
                let finding = example_address(key, &value, &domain, &smtp.host, &config.path);
                findings.push(at(finding, line("list", Some(key))));
            }
        }
        // A relay on this machine is how test servers (Mailpit, the test
        // suite) are reached, and they are sent example addresses on purpose.
        Transport::Smtp(_) => {}
    }
    findings
}

/// What a test send (`--test-to`) warns about before it builds anything:
/// the configuration's lints above, and the events already under way
/// (which a real send refuses).
pub fn for_test_send(
    config: &Config,
    loaded: &crate::render::Loaded,
) -> anyhow::Result<Vec<Finding>> {
    let mut findings = lint(config);
    let now = crate::model::dates::now()?;
    for mut started in super::started::at_send(&loaded.issue, &loaded.archive, &now) {
        started.severity = crate::model::finding::Severity::Warning;
        started.message.push_str(" (a real send refuses it)");
        findings.push(started);
    }
    Ok(findings)
}

fn smtp_ignored(config: &Path, outbox: &Path) -> Finding {
    Finding::warning(
        "smtp-ignored-in-outbox",
        config,
        format!(
            "[smtp] is filled in but `kind = \"outbox\"` in [transport], so it is ignored: messages, test messages too, are written to `{}` and nothing is sent. To send through this server set `kind = \"smtp\"`; to keep writing files, comment out [smtp]",
            outbox.display()
        ),
    )
}

fn example_address(key: &str, value: &str, domain: &str, host: &str, config: &Path) -> Finding {
    let (what, real) = if value.starts_with("https://") {
        ("a link every supporter gets would lead nowhere", "link")
    } else {
        ("mail to it goes nowhere", "address")
    };
    Finding::warning(
        "example-address",
        config,
        format!(
            "`list.{key}` is `{value}`, on `{domain}`, a domain reserved for examples: {what}. Write the charity's real {real} before sending through `{host}`"
        ),
    )
}

/// `(key, value, domain)` of each address or link in `[list]` whose
/// domain is reserved for examples.
fn example_values(config: &Config) -> Vec<(&'static str, String, String)> {
    let l = &config.list;
    let mut values = vec![(
        "from",
        l.from.email.to_string(),
        l.from.email.domain().to_string(),
    )];
    if let Some(reply_to) = &l.reply_to {
        values.push((
            "reply-to",
            reply_to.email.to_string(),
            reply_to.email.domain().to_string(),
        ));
    }
    let after_at = |a: &str| {
        a.rsplit_once('@')
            .map_or(String::new(), |(_, d)| d.to_string())
    };
    values.push((
        "unsubscribe-mailto",
        l.unsubscribe_mailto.clone(),
        after_at(&l.unsubscribe_mailto),
    ));
    for (key, url) in [
        ("site-url", &l.site_url),
        ("post-url", &l.post_url),
        ("donate-url", &l.donate_url),
        ("web-version-url", &l.web_version_url),
        ("unsubscribe-url", &l.unsubscribe_url),
    ] {
        values.push((key, url.clone(), url_host(url)));
    }
    values
        .into_iter()
        .filter(|(_, _, domain)| is_example_domain(domain))
        .collect()
}

/// The host of an `https://` URL (no user, port, path or query).
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.split(':').next().unwrap_or_default().to_string()
}

/// `example.org`, `.com`, `.net` and their subdomains, and the top-level
/// domains `.example`, `.test` and `.invalid` (RFC 2606): no one receives
/// mail or serves pages there.
pub fn is_example_domain(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let under = |parent: &str| domain == parent || domain.ends_with(&format!(".{parent}"));
    [
        "example.org",
        "example.com",
        "example.net",
        "example",
        "test",
        "invalid",
    ]
    .iter()
    .any(|parent| under(parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_domains() {
        for domain in [
            "example.org",
            "renecassin.example.org",
            "EXAMPLE.COM",
            "mail.example.net.",
            "news.example",
            "charity.test",
            "nowhere.invalid",
        ] {
            assert!(is_example_domain(domain), "{domain}");
        }
        for domain in [
            "renecassin.org",
            "example.co.uk",
            "myexample.org",
            "testing.org",
            "",
        ] {
            assert!(!is_example_domain(domain), "{domain}");
        }
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://news.example.org/issues/{issue}/"),
            "news.example.org"
        );
        assert_eq!(
            url_host("https://user@www.example.com:8443/a?b"),
            "www.example.com"
        );
        assert_eq!(url_host("https://www.renecassin.org"), "www.renecassin.org");
    }
}

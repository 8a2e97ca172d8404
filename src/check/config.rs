//! Lints of the configuration: sending settings that are unsafe or incomplete.

use super::sending;
use crate::model::config::Config;
use crate::model::finding::Finding;

pub(super) fn config_lints(config: &Config, findings: &mut Vec<Finding>) {
    if let Some(dkim) = &config.dkim {
        if !config.dkim_aligned() {
            findings.push(Finding::error(
                "dkim-misaligned",
                &config.path,
                format!(
                    "the From domain `{}` is not `{}` or a subdomain of it, so DMARC fails even with a valid DKIM signature; sign with the From domain",
                    config.from_domain(),
                    dkim.domain
                ),
            ));
        }
        if let Err(error) = crate::render::message::dkim_config(dkim) {
            findings.push(Finding::error(
                "dkim-key",
                &config.path,
                format!("{error:#}"),
            ));
        }
    }
    // The unsubscribe secret is a sending concern: the sending commands
    // refuse without it, and CI never has it.
    findings.extend(sending::lint(config));
    if let crate::model::config::Transport::Smtp(smtp) = &config.transport
        && let crate::model::config::PasswordSource::Env(name) = &smtp.password
        && std::env::var_os(name).is_none()
    {
        findings.push(Finding::warning(
            "missing-password",
            &config.path,
            format!("the SMTP password variable `{name}` is not set here; a real send needs it"),
        ));
    }
}

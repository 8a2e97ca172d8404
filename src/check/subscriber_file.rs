//! Findings from the subscriber file: one per row problem.

use std::path::Path;

use crate::model::finding::{Finding, Severity};
use crate::model::subscribers::RowProblem;

pub(super) fn subscriber_finding(path: &Path, problem: &RowProblem) -> Finding {
    let code = match problem {
        RowProblem::InvalidAddress { .. } => "invalid-address",
        RowProblem::UnknownStatus { .. } | RowProblem::UnreadableConsent { .. } => "unknown-status",
        RowProblem::Duplicate { .. } => "duplicate-address",
        RowProblem::StatusConflict { .. } => "status-conflict",
        RowProblem::Malformed { .. } => "malformed-row",
    };
    let finding = Finding::error(code, path, problem.to_string()).at_line(problem.line() as usize);
    match problem {
        RowProblem::Duplicate { .. } => Finding {
            severity: Severity::Warning,
            ..finding
        },
        _ => finding,
    }
}

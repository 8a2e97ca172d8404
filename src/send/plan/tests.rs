//! The plan's promises. The first tests give [`decide`] joined rows
//! directly; the rest run [`make`] on a copy of the example project with a
//! subscriber file and a journal written for the case, as a send would
//! find them.

use super::*;

fn entry(state: Final) -> Entry {
    Entry {
        hash: KeyHash(1, 1),
        state,
        twice: false,
        email_at: None,
        outcome_at: None,
    }
}

fn address(line: Option<u64>, other: Option<Entry>) -> Joined<Entry> {
    Joined::Address {
        hash: KeyHash(1, 1),
        line,
        other,
    }
}

fn tally_of(cases: &[Joined<Entry>], policy: Policy, one_click: &[KeyHash]) -> (u64, Tally) {
    tally_with(cases, policy, one_click, &LineMarks::default())
}

fn tally_with(
    cases: &[Joined<Entry>],
    policy: Policy,
    one_click: &[KeyHash],
    marks: &LineMarks,
) -> (u64, Tally) {
    let clicks: HashSet<KeyHash> = one_click.iter().copied().collect();
    let mut tally = Tally::default();
    let mut reach = Reach::default();
    let selected = cases
        .iter()
        .filter(|j| {
            let audience = Audience {
                marks,
                reach: &mut reach,
            };
            decide(j, policy, &clicks, audience, &mut tally).0
        })
        .count() as u64;
    (selected, tally)
}

#[test]
fn pending_is_a_set_difference_not_a_subtraction() {
    // 30 subscribed, 25 sent of whom 5 unsubscribed since: 5 pending.
    let mut cases = Vec::new();
    for i in 0..30 {
        let sent = (i < 25).then(|| entry(Final::Accepted));
        let line = if (20..25).contains(&i) { None } else { Some(i) };
        cases.push(address(line, sent));
    }
    let (selected, tally) = tally_of(&cases, Policy::default(), &[]);
    assert_eq!(selected, 5);
    assert_eq!((tally.new, tally.sent, tally.opted_out_since), (5, 20, 5));
    assert_eq!(tally.to_send(), 5);
}

#[test]
fn journal_entries_of_another_file_are_counted_apart() {
    let cases = [
        Joined::Missing {
            other: entry(Final::Accepted),
        },
        address(Some(2), None),
    ];
    let (selected, tally) = tally_of(&cases, Policy::default(), &[]);
    assert_eq!((selected, tally.not_in_file, tally.new), (1, 1, 1));
}

#[test]
fn failed_and_uncertain_only_when_asked() {
    let cases = [
        address(Some(1), Some(entry(Final::Failed))),
        address(Some(2), Some(entry(Final::Uncertain))),
        address(Some(3), Some(entry(Final::Deferred))),
    ];
    assert_eq!(tally_of(&cases, Policy::default(), &[]).0, 1);
    let all = Policy {
        retry_failed: true,
        resend_uncertain: true,
    };
    let (selected, tally) = tally_of(&cases, all, &[]);
    assert_eq!((selected, tally.to_send()), (3, 3));
}

#[test]
fn a_one_click_unsubscribe_not_yet_applied_is_not_mailed() {
    let cases = [address(Some(1), None)];
    let (selected, tally) = tally_of(&cases, Policy::default(), &[KeyHash(1, 1)]);
    assert_eq!((selected, tally.one_click, tally.to_send()), (0, 1, 0));
}

#[test]
fn changed_parts_are_named_in_words() {
    assert_eq!(
        names(&["html".into(), "text".into()]),
        "HTML part and text part"
    );
}

// The whole plan: `make` on a project.

use crate::journal::Kind;
use crate::model::config::Config;
use crate::render::message::Composer;
use crate::token::Signer;

/// A copy of the example project whose subscriber file is the case's.
struct Project {
    /// Removed when the test ends.
    _dir: tempfile::TempDir,
    config: Config,
    loaded: crate::render::Loaded,
}

const ISSUE: &str = "issues/2022-07-13.toml";

impl Project {
    fn with_list(csv: &str) -> Project {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        for folder in ["archive", "issues", "templates"] {
            copy_dir(&repo.join(folder), &dir.path().join(folder));
        }
        std::fs::copy(
            repo.join("newsletter.toml"),
            dir.path().join("newsletter.toml"),
        )
        .expect("the example configuration");
        let config = Config::load(&dir.path().join("newsletter.toml")).expect("it loads");
        std::fs::write(&config.paths.subscribers, csv).expect("the subscriber file");
        let loaded =
            crate::render::load_issue(&config, &dir.path().join(ISSUE)).expect("it renders");
        Project {
            _dir: dir,
            config,
            loaded,
        }
    }

    /// The journal of an earlier run: its header (as the first plan
    /// writes it), then `lines`, through the journal's own writer.
    fn journal(&self, lines: &[Line]) {
        let first = self.plan(Policy::default()).first_lines;
        let path = journal::path(&self.config.paths.journal, &self.loaded.rendered.issue_id);
        let (writer, handle) = journal::Writer::spawn(&path, &first).expect("a journal");
        for line in lines {
            handle.write(line).expect("a journal line");
        }
        drop(handle);
        writer.finish().expect("the journal on disk");
    }

    fn plan(&self, policy: Policy) -> Plan {
        let plan = make(&Inputs {
            rendered: &self.loaded.rendered,
            config: &self.config,
            list_path: &self.config.paths.subscribers,
            policy,
            accept_changes: false,
            keep_times: 0,
            inspect: "newsletter status",
        })
        .expect("a plan");
        // What the summary says it mails is what is mailed.
        assert_eq!(
            plan.selection.len(),
            plan.tally.to_send(),
            "{:?}",
            plan.tally
        );
        plan
    }

    /// The addresses the run would mail, in file order, at most `limit`:
    /// the messages [`crate::send::deliver::produce`] builds.
    fn mailed(&self, plan: &Plan, limit: Option<u64>) -> Vec<String> {
        let signer = Signer::new(&self.config.list.id, b"a test secret");
        let rendered = &self.loaded.rendered;
        let columns = &plan.survey.columns;
        let composer = Composer::new(&self.config, rendered, columns, signer, "").expect("it");
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut mailed = Vec::new();
        crate::send::deliver::produce(plan, &composer, limit, &stop, |job| {
            mailed.push(job.email);
            true
        })
        .expect("the messages");
        mailed
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder");
    for entry in std::fs::read_dir(from).expect("the example project") {
        let entry = entry.expect("a file of the example project");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("a copy");
        }
    }
}

/// A message handed over and what became of it, as the workers journal it.
fn sent(email: &str, kind: Kind, reply: &str) -> [Line; 2] {
    let key = email.to_lowercase();
    let written = if kind == Kind::Accepted { "" } else { email };
    [
        Line::event(Kind::Attempt, &key, email, ""),
        Line::event(kind, &key, written, reply),
    ]
}

fn accepted(email: &str) -> [Line; 2] {
    sent(email, Kind::Accepted, "250 2.0.0 Ok")
}

/// The selected lines up to `last`.
fn lines(plan: &Plan, last: u64) -> Vec<u64> {
    (1..=last).filter(|l| plan.selection.contains(*l)).collect()
}

const HEADER: &str = "email,first_name,status\n";

fn list(rows: &[&str]) -> String {
    let mut csv = HEADER.to_string();
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    csv
}

#[test]
fn an_empty_list_mails_no_one_and_starts_a_journal() {
    let project = Project::with_list(HEADER);
    let plan = project.plan(Policy::default());
    assert!(plan.selection.is_empty());
    assert_eq!(plan.tally, Tally::default());
    assert_eq!(plan.survey.rows, 0);
    let kinds: Vec<Kind> = plan.first_lines.iter().map(Line::kind).collect();
    assert_eq!(kinds, [Kind::Journal]);
}

#[test]
fn everyone_already_sent_mails_no_one_and_adds_nothing_to_the_journal() {
    let project = Project::with_list(&list(&[
        "ana@example.org,Ana,subscribed",
        "ben@example.org,Ben,subscribed",
        "cy@example.org,Cy,subscribed",
    ]));
    project.journal(
        &[
            accepted("ana@example.org"),
            accepted("ben@example.org"),
            accepted("cy@example.org"),
        ]
        .concat(),
    );
    let plan = project.plan(Policy::default());
    assert!(plan.selection.is_empty());
    assert_eq!((plan.tally.sent, plan.tally.to_send()), (3, 0));
    assert!(plan.first_lines.is_empty(), "{:?}", plan.first_lines);
}

#[test]
fn journal_entries_for_addresses_no_longer_in_the_list_are_counted_not_mailed() {
    let project = Project::with_list(&list(&["stays@example.org,Stays,subscribed"]));
    project.journal(
        &[
            accepted("gone@example.org"),
            sent("later@example.org", Kind::Deferred, "451 4.3.0 Try again"),
            sent(
                "refused@example.org",
                Kind::Failed,
                "550 5.1.1 No such user",
            ),
        ]
        .concat(),
    );
    let plan = project.plan(Policy {
        retry_failed: true,
        resend_uncertain: true,
    });
    assert_eq!(lines(&plan, 2), [2]);
    assert_eq!(project.mailed(&plan, None), ["stays@example.org"]);
    let t = &plan.tally;
    assert_eq!((t.not_in_file, t.new, t.deferred, t.failed), (3, 1, 0, 0));
}

#[test]
fn duplicates_and_opt_outs_interleaved_mail_each_subscribed_address_once() {
    let project = Project::with_list(
        "email,first_name,status,email_opt_out\n\
         ana@example.org,Ana,subscribed,no\n\
         ben@example.org,Ben,subscribed,no\n\
         ANA@example.org,Ana again,subscribed,no\n\
         cy@example.org,Cy,subscribed,yes\n\
         ben@example.org,Ben,unsubscribed,no\n\
         dee@example.org,Dee,subscribed,no\n\
         cy@example.org,Cy again,subscribed,no\n\
         ana@example.org,Ana thrice,subscribed,no\n",
    );
    let plan = project.plan(Policy::default());
    // Ana on her first line, Dee; not Ben (opted out on line 6) nor Cy
    // (opted out on line 5, before subscribing again on line 8).
    assert_eq!(lines(&plan, 9), [2, 7]);
    assert_eq!(
        project.mailed(&plan, None),
        ["ana@example.org", "dee@example.org"]
    );
    let survey = &plan.survey;
    assert_eq!((survey.duplicates, survey.conflicts), (2, 2));
    assert_eq!(survey.opted_out, [("email_opt_out".to_string(), 1)]);
    assert_eq!(plan.tally.new, 2);
}

#[test]
fn a_deferred_recipient_who_opted_out_since_is_not_mailed_again() {
    let project = Project::with_list(
        "email,first_name,status,email_opt_out\n\
         ana@example.org,Ana,subscribed,yes\n\
         ben@example.org,Ben,subscribed,no\n",
    );
    project.journal(&sent(
        "ana@example.org",
        Kind::Deferred,
        "451 4.3.0 Try again",
    ));
    let plan = project.plan(Policy::default());
    assert_eq!(lines(&plan, 3), [3]);
    let t = &plan.tally;
    assert_eq!((t.opted_out_since, t.deferred, t.new), (1, 0, 1));
}

#[test]
fn a_row_that_changed_address_since_the_journal_is_mailed_at_the_new_one() {
    let project = Project::with_list(&list(&["ana.new@example.org,Ana,subscribed"]));
    project.journal(&accepted("ana.old@example.org"));
    let plan = project.plan(Policy::default());
    assert_eq!(lines(&plan, 2), [2]);
    let t = &plan.tally;
    assert_eq!((t.new, t.sent, t.not_in_file), (1, 0, 1));
}

#[test]
fn rows_moved_to_other_lines_since_the_journal_are_known_by_address() {
    let project = Project::with_list(&list(&[
        "new@example.org,New,subscribed",
        "ben@example.org,Ben,subscribed",
        "ana@example.org,Ana,subscribed",
    ]));
    // Sent when Ana was on line 2 and Ben on line 3.
    project.journal(&[accepted("ana@example.org"), accepted("ben@example.org")].concat());
    let plan = project.plan(Policy::default());
    assert_eq!(lines(&plan, 4), [2]);
    assert_eq!((plan.tally.new, plan.tally.sent), (1, 2));
}

#[test]
fn an_address_written_with_other_capitals_since_is_the_same_recipient() {
    let project = Project::with_list(&list(&["Ana.Abel@Example.ORG,Ana,subscribed"]));
    project.journal(&accepted("ana.abel@example.org"));
    let plan = project.plan(Policy::default());
    assert!(plan.selection.is_empty());
    assert_eq!((plan.tally.sent, plan.tally.not_in_file), (1, 0));
}

#[test]
fn a_deferred_recipient_4xx_is_mailed_again() {
    let project = Project::with_list(&list(&["ana@example.org,Ana,subscribed"]));
    project.journal(&sent(
        "ana@example.org",
        Kind::Deferred,
        "451 4.3.0 Try again",
    ));
    let plan = project.plan(Policy::default());
    assert_eq!(lines(&plan, 2), [2]);
    assert_eq!((plan.tally.deferred, plan.tally.new), (1, 0));
}

#[test]
fn a_connection_lost_after_the_message_is_deferred_and_mailed_again() {
    let project = Project::with_list(&list(&["ana@example.org,Ana,subscribed"]));
    project.journal(&sent(
        "ana@example.org",
        Kind::Lost,
        "the connection was lost",
    ));
    let plan = project.plan(Policy::default());
    assert_eq!(lines(&plan, 2), [2]);
    assert_eq!((plan.tally.deferred, plan.twice), (1, 0));
}

#[test]
fn a_failed_recipient_5xx_is_not_mailed_again_by_default() {
    let project = Project::with_list(&list(&["ana@example.org,Ana,subscribed"]));
    project.journal(&sent(
        "ana@example.org",
        Kind::Failed,
        "550 5.1.1 No such user",
    ));
    let plan = project.plan(Policy::default());
    assert!(plan.selection.is_empty());
    assert_eq!((plan.tally.failed, plan.tally.failed_retried), (1, 0));
}

#[test]
fn a_failed_recipient_5xx_is_mailed_again_with_retry_failed() {
    let project = Project::with_list(&list(&["ana@example.org,Ana,subscribed"]));
    project.journal(&sent(
        "ana@example.org",
        Kind::Failed,
        "550 5.1.1 No such user",
    ));
    let plan = project.plan(Policy {
        retry_failed: true,
        resend_uncertain: false,
    });
    assert_eq!(lines(&plan, 2), [2]);
    assert_eq!((plan.tally.failed, plan.tally.failed_retried), (1, 1));
}

#[test]
fn an_attempt_without_an_outcome_is_uncertain_and_not_mailed_by_default() {
    let project = Project::with_list(&list(&["Ana@example.org,Ana,subscribed"]));
    project.journal(&[Line::event(
        Kind::Attempt,
        "ana@example.org",
        "Ana@example.org",
        "",
    )]);
    let plan = project.plan(Policy::default());
    assert!(plan.selection.is_empty());
    assert_eq!(plan.tally.uncertain, 1);
    assert_eq!(plan.uncertain_sample, ["Ana@example.org"]);
}

#[test]
fn an_attempt_without_an_outcome_is_mailed_again_with_resend_uncertain() {
    let project = Project::with_list(&list(&["ana@example.org,Ana,subscribed"]));
    project.journal(&[Line::event(
        Kind::Attempt,
        "ana@example.org",
        "ana@example.org",
        "",
    )]);
    let plan = project.plan(Policy {
        retry_failed: false,
        resend_uncertain: true,
    });
    assert_eq!(lines(&plan, 2), [2]);
    assert_eq!((plan.tally.uncertain, plan.tally.uncertain_resent), (1, 1));
}

#[test]
fn a_recipient_accepted_once_is_not_mailed_again_whatever_came_after() {
    let project = Project::with_list(&list(&["ana@example.org,Ana,subscribed"]));
    project.journal(
        &[
            accepted("ana@example.org"),
            sent("ana@example.org", Kind::Failed, "550 5.7.1 Refused"),
        ]
        .concat(),
    );
    let plan = project.plan(Policy {
        retry_failed: true,
        resend_uncertain: true,
    });
    assert!(plan.selection.is_empty());
    assert_eq!((plan.tally.sent, plan.tally.failed), (1, 0));
}

#[test]
fn a_limit_takes_the_first_selected_rows_in_file_order() {
    let project = Project::with_list(&list(&[
        "ana@example.org,Ana,subscribed",
        "ben@example.org,Ben,subscribed",
        "cy@example.org,Cy,unsubscribed",
        "dee@example.org,Dee,subscribed",
        "eve@example.org,Eve,subscribed",
    ]));
    project.journal(&accepted("ana@example.org"));
    let plan = project.plan(Policy::default());
    // The plan has no limit or batches of its own: `--limit` counts
    // messages as they are built, so it skips the rows not selected.
    assert_eq!(plan.tally.to_send(), 3);
    assert_eq!(
        project.mailed(&plan, Some(2)),
        ["ben@example.org", "dee@example.org"]
    );
}

#[test]
fn rows_on_the_biggest_line_numbers_are_selected_and_built() {
    // Blank lines count (line numbers are the file's), so rows land on
    // the edges of the selection's 64-line words, and a million lines on.
    let mut csv = HEADER.to_string();
    let mut line = 1;
    let mut row = |csv: &mut String, at: u64, email: &str| {
        while line + 1 < at {
            csv.push('\n');
            line += 1;
        }
        csv.push_str(&format!("{email},Someone,subscribed\n"));
        line += 1;
    };
    let far = 1_000_129;
    for (at, email) in [
        (63, "a63@example.org"),
        (64, "a64@example.org"),
        (65, "a65@example.org"),
        (127, "a127@example.org"),
        (128, "a128@example.org"),
        (far, "far@example.org"),
    ] {
        row(&mut csv, at, email);
    }
    let project = Project::with_list(&csv);
    let plan = project.plan(Policy::default());
    assert_eq!(plan.survey.rows, 6);
    assert_eq!(lines(&plan, far + 64), [63, 64, 65, 127, 128, far]);
    let mailed = project.mailed(&plan, None);
    assert_eq!(mailed.len(), 6);
    assert_eq!(mailed.last().map(String::as_str), Some("far@example.org"));
}

#[test]
fn an_uncertain_recipient_no_longer_in_the_list_is_not_named_among_the_uncertain() {
    // The summary says "{tally.uncertain} recipient(s) are uncertain" and
    // lists the sample: both must be about this file's recipients, whom
    // --resend-uncertain would mail.
    let project = Project::with_list(&list(&["ana@example.org,Ana,subscribed"]));
    project.journal(&[Line::event(
        Kind::Attempt,
        "gone@example.org",
        "gone@example.org",
        "",
    )]);
    let plan = project.plan(Policy::default());
    assert_eq!((plan.tally.uncertain, plan.tally.not_in_file), (0, 1));
    assert!(
        plan.uncertain_sample.is_empty(),
        "{:?}",
        plan.uncertain_sample
    );
}

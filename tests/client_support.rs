//! Every example issue's HTML part checked against the Can I email database
//! by doiuse-email (`tests/doiuse/check.mjs`, the version pinned in
//! `tests/doiuse/package-lock.json`) for the clients our readers use.
//!
//! Needs `scripts/setup-doiuse` once (Node.js and tests/doiuse/node_modules);
//! without it every test here fails saying so. Nothing leaves the machine.
//! What each client lacks is printed, and kept in
//! `tests/artifacts/doiuse-email.txt`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use support::project::{Project, repo};

/// The clients checked, as doiuse-email names them, under the names our
/// office knows them by.
const CLIENTS: [(&str, &[&str]); 6] = [
    (
        "Gmail",
        &[
            "gmail.desktop-webmail",
            "gmail.ios",
            "gmail.android",
            "gmail.mobile-webmail",
        ],
    ),
    ("Outlook for Windows", &["outlook.windows"]),
    ("Outlook for Mac", &["outlook.macos"]),
    ("Outlook on the web", &["outlook.outlook-com"]),
    ("Apple Mail", &["apple-mail.macos", "apple-mail.ios"]),
    (
        "Yahoo Mail",
        &["yahoo.desktop-webmail", "yahoo.ios", "yahoo.android"],
    ),
];

/// A feature of the email that some clients lack, used knowingly.
struct Known {
    /// doiuse-email's (Can I email's) title for it.
    feature: &'static str,
    /// The clients that ignore it altogether; any other client may support
    /// it in part (with notes), never not at all.
    unsupported_in: &'static [&'static str],
    /// Why we use it anyway, and what the reader of such a client sees.
    why: &'static str,
}

const GMAIL_MOBILE_WEB: &str = "gmail.mobile-webmail";
const OUTLOOK_WINDOWS: &str = "outlook.windows";
const YAHOO: [&str; 3] = ["yahoo.desktop-webmail", "yahoo.ios", "yahoo.android"];

/// Every feature doiuse-email reports for the example issues. A report of
/// anything else, or of one of these as unsupported by another client,
/// fails the test; so does an entry nothing reports any more.
const KNOWN: &[Known] = &[
    // The post and event cards (src/render/cards.rs).
    Known {
        feature: "border",
        unsupported_in: &[],
        why: "1px borders on the cards' table cells; Outlook's limits are for borders over 8px \
              and on <p> or <div>",
    },
    Known {
        feature: "height attribute",
        unsupported_in: &[],
        why: "images carry width and height; Outlook's 120-dpi scaling is off (PixelsPerInch 96)",
    },
    Known {
        feature: "text-align",
        unsupported_in: &[],
        why: "left and center only; the partial support is for `start` and `end`",
    },
    Known {
        feature: "aria-hidden attribute",
        unsupported_in: &YAHOO,
        why: "hides the cards' decorative date badge from screen readers; where it is dropped \
              the date is read twice, once as the badge",
    },
    Known {
        feature: "white-space",
        unsupported_in: &[OUTLOOK_WINDOWS],
        why: "nowrap on the 1px span that completes \"Read more\"'s accessible name; Outlook \
              for Windows never shows the span (mso-hide:all)",
    },
    // The <style> block: resets, the narrow-screen padding and dark mode.
    // Where it is dropped the inline styles alone carry the light design.
    Known {
        feature: "Type selector",
        unsupported_in: &[GMAIL_MOBILE_WEB],
        why: "resets for body, table, td, img and a in <style>; inline styles carry the design",
    },
    Known {
        feature: "Class selector",
        unsupported_in: &[GMAIL_MOBILE_WEB],
        why: "the media queries select by class; without them the inline light design stays",
    },
    Known {
        feature: "Attribute selector",
        unsupported_in: &[GMAIL_MOBILE_WEB, OUTLOOK_WINDOWS],
        why: "a[x-apple-data-detectors] is for Apple Mail's detected links only",
    },
    Known {
        feature: "!important keyword",
        unsupported_in: &[],
        why: "in <style> only, lowercase, with a space before, as every client wants",
    },
    Known {
        feature: "@media",
        unsupported_in: &[GMAIL_MOBILE_WEB, OUTLOOK_WINDOWS],
        why: "the layout is fluid without it; it only narrows the side padding at <=480px \
              and holds dark mode",
    },
    Known {
        feature: "@media (prefers-color-scheme)",
        unsupported_in: &[
            "gmail.desktop-webmail",
            "gmail.ios",
            "gmail.android",
            GMAIL_MOBILE_WEB,
            OUTLOOK_WINDOWS,
            YAHOO[0],
            YAHOO[1],
            YAHOO[2],
        ],
        why: "our dark colours where honoured (Apple Mail, Outlook for Mac and the web); \
              elsewhere the light design, or the client's own dark mode",
    },
    // The hidden preheader: each client hides it with what it supports.
    Known {
        feature: "display:none",
        unsupported_in: &[GMAIL_MOBILE_WEB],
        why: "hides the preheader; max-height:0 and overflow:hidden hide it there",
    },
    Known {
        feature: "opacity",
        unsupported_in: &[
            GMAIL_MOBILE_WEB,
            OUTLOOK_WINDOWS,
            YAHOO[0],
            YAHOO[1],
            YAHOO[2],
        ],
        why: "one of the preheader's hiding rules; display:none or mso-hide:all does it there",
    },
    Known {
        feature: "overflow",
        unsupported_in: &[OUTLOOK_WINDOWS, "yahoo.android"],
        why: "one of the preheader's hiding rules; mso-hide:all and display:none do it there",
    },
    Known {
        feature: "max-width",
        unsupported_in: &[],
        why: "the 600px container (a div; Outlook gets the MSO 600px table) and the logo",
    },
    // Box and text properties, used in the forms every client supports.
    Known {
        feature: "margin",
        unsupported_in: &[],
        why: "positive values; the container's auto margins have the MSO table in Outlook",
    },
    Known {
        feature: "padding",
        unsupported_in: &[],
        why: "Outlook pads table cells only: the button's cell has mso-padding-alt \
              (tests/browser.rs measures it with Outlook simulated)",
    },
    Known {
        feature: "border-radius",
        unsupported_in: &[OUTLOOK_WINDOWS],
        why: "the button's rounded corners; square in Outlook for Windows",
    },
    Known {
        feature: "display",
        unsupported_in: &[],
        why: "block and inline-block only; Outlook ignores the link's inline-block, the cell \
              sizes the button",
    },
    Known {
        feature: "font-weight",
        unsupported_in: &[],
        why: "the keyword bold only, no numbers",
    },
    Known {
        feature: "line-height",
        unsupported_in: &[],
        why: "unitless values; Outlook's trouble is with px and em",
    },
    Known {
        feature: "letter-spacing",
        unsupported_in: &[],
        why: "1px on the masthead's list name; Outlook's trouble is with em",
    },
    Known {
        feature: "text-decoration",
        unsupported_in: &[],
        why: "one value at a time: underline or none",
    },
    Known {
        feature: "text-transform",
        unsupported_in: &[],
        why: "uppercase on the masthead; lowercase is what Outlook lacks",
    },
    Known {
        feature: "word-break",
        unsupported_in: &[YAHOO[0], YAHOO[1], YAHOO[2]],
        why: "a safety net for long link texts; the examples' fit without it",
    },
    // Markup.
    Known {
        feature: "<body> element",
        unsupported_in: &["yahoo.ios", "yahoo.android"],
        why: "webmails replace it; the page colour is on the outer table too",
    },
    Known {
        feature: "lang attribute",
        unsupported_in: &[],
        why: "on <html> only (Yahoo ignores it on td)",
    },
    Known {
        feature: "role attribute",
        unsupported_in: &[],
        why: "role=presentation on layout tables only",
    },
    Known {
        feature: "width attribute",
        unsupported_in: &[],
        why: "pixel widths on tables and images; PixelsPerInch 96 stops Outlook's 120 dpi scaling",
    },
    Known {
        feature: "mailto: links",
        unsupported_in: &[],
        why: "the office's address, without bcc",
    },
];

/// One thing doiuse-email said: a feature is unsupported, partial, or
/// has a note, in one client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    kind: Kind,
    feature: String,
    client: String,
    note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Unsupported,
    Partial,
    Note,
}

/// Reads doiuse-email's messages; those in no known form are returned as
/// the error.
fn findings(result: &Value) -> Result<Vec<Finding>, Vec<String>> {
    let mut found = Vec::new();
    let mut unread = Vec::new();
    let messages = |key: &str| {
        result[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    // `FEATURE` is not supported by `CLIENT`
    // `FEATURE` is only partially supported by `CLIENT`
    // Note about `FEATURE` support for `CLIENT`: NOTE
    let between = |text: &str, before: &str, after: &str| -> Option<(String, String)> {
        let rest = text.strip_prefix(before)?;
        let (inside, rest) = rest.split_once(after)?;
        Some((inside.to_string(), rest.to_string()))
    };
    for (key, kind) in [
        ("errors", Kind::Unsupported),
        ("warnings", Kind::Partial),
        ("notes", Kind::Note),
    ] {
        for message in messages(key) {
            let read = match kind {
                Kind::Unsupported | Kind::Partial => {
                    let middle = if kind == Kind::Unsupported {
                        "` is not supported by `"
                    } else {
                        "` is only partially supported by `"
                    };
                    between(message, "`", middle).and_then(|(feature, rest)| {
                        let client = rest.strip_suffix('`')?;
                        Some((feature, client.to_string(), String::new()))
                    })
                }
                Kind::Note => between(message, "Note about `", "` support for `").and_then(
                    |(feature, rest)| {
                        let (client, note) = rest.split_once("`: ")?;
                        Some((feature, client.to_string(), note.to_string()))
                    },
                ),
            };
            match read {
                Some((feature, client, note)) => found.push(Finding {
                    kind,
                    feature,
                    client,
                    note,
                }),
                None => unread.push(format!("{key}: {message}")),
            }
        }
    }
    if unread.is_empty() {
        Ok(found)
    } else {
        Err(unread)
    }
}

/// What is wrong with the findings for the allowlist: features not in it,
/// features unsupported by a client it does not name, clients we did not
/// ask about.
fn judge(issue: &str, found: &[Finding]) -> Vec<String> {
    let asked: BTreeSet<&str> = CLIENTS
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    let mut failures = BTreeSet::new();
    for f in found {
        if !asked.contains(f.client.as_str()) {
            failures.insert(format!(
                "{issue}: a finding for `{}`, a client not asked about: {f:?}",
                f.client
            ));
        }
        match KNOWN.iter().find(|k| k.feature == f.feature) {
            None => {
                failures.insert(format!(
                    "{issue}: `{}` is new ({:?} in `{}`{}): use what every client supports, or add it \
                     to KNOWN in tests/client_support.rs saying why",
                    f.feature,
                    f.kind,
                    f.client,
                    if f.note.is_empty() { String::new() } else { format!(": {}", f.note) }
                ));
            }
            Some(k)
                if f.kind == Kind::Unsupported
                    && !k.unsupported_in.contains(&f.client.as_str()) =>
            {
                failures.insert(format!(
                    "{issue}: `{}` is not supported by `{}`, which KNOWN does not list for it",
                    f.feature, f.client
                ));
            }
            Some(_) => {}
        }
    }
    failures.into_iter().collect()
}

/// Allowlist entries no finding used, over all issues.
fn stale(found: &[Finding]) -> Vec<String> {
    let mut failures = Vec::new();
    for k in KNOWN {
        if !found.iter().any(|f| f.feature == k.feature) {
            failures.push(format!(
                "KNOWN lists `{}`, which nothing reports any more: remove it",
                k.feature
            ));
            continue;
        }
        for client in k.unsupported_in {
            if !found.iter().any(|f| {
                f.feature == k.feature && f.kind == Kind::Unsupported && f.client == *client
            }) {
                failures.push(format!(
                    "KNOWN lists `{}` as unsupported by `{client}`, which doiuse-email no longer says: \
                     remove the client",
                    k.feature
                ));
            }
        }
    }
    failures
}

fn checker() -> PathBuf {
    repo().join("tests/doiuse/check.mjs")
}

/// Panics, naming the set-up script, unless node and doiuse-email are installed.
fn require_setup() {
    let node = Command::new("node").arg("--version").output();
    let installed = repo().join("tests/doiuse/node_modules/doiuse-email/package.json");
    assert!(
        node.is_ok_and(|o| o.status.success()) && installed.exists(),
        "the client-support tests need node on PATH and {}: run scripts/setup-doiuse (as root) and try again",
        installed.display()
    );
}

/// doiuse-email's verdict on each HTML file, for all of `CLIENTS`.
fn check(files: &[PathBuf]) -> BTreeMap<String, Value> {
    require_setup();
    let clients: Vec<&str> = CLIENTS
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    let out = Command::new("node")
        .arg(checker())
        .arg(clients.join(","))
        .args(files)
        .output()
        .expect("cannot start node; run scripts/setup-doiuse");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        checker().display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{} printed no JSON ({e}):\n{}",
            checker().display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Each example issue (every file in the example's `issues/`) rendered by
/// `preview --out`: its name and the path of its HTML part.
fn rendered_examples(project: &Project) -> Vec<(String, PathBuf)> {
    let mut issues: Vec<String> = fs::read_dir(project.path("issues"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".toml").map(str::to_string))
        .collect();
    issues.sort();
    assert!(issues.len() >= 2, "example issues: {issues:?}");
    issues
        .into_iter()
        .map(|issue| {
            let out = project.path(&format!("out/{issue}"));
            project
                .run(&[
                    "preview",
                    &format!("issues/{issue}.toml"),
                    "--out",
                    out.to_str().unwrap(),
                ])
                .expect_code(0);
            (issue, out.join("index.html"))
        })
        .collect()
}

/// Per client: what it does not support and what only in part.
fn per_client(issue: &str, found: &[Finding]) -> Vec<String> {
    let mut rows = vec![format!("{issue}:")];
    for (name, ids) in CLIENTS {
        for id in ids {
            let features = |kind: Kind| {
                let set: BTreeSet<&str> = found
                    .iter()
                    .filter(|f| f.client == *id && f.kind == kind)
                    .map(|f| f.feature.as_str())
                    .collect();
                if set.is_empty() {
                    "-".to_string()
                } else {
                    set.into_iter().collect::<Vec<_>>().join(", ")
                }
            };
            rows.push(format!("  {name} ({id})"));
            rows.push(format!("    unsupported: {}", features(Kind::Unsupported)));
            rows.push(format!("    partial:     {}", features(Kind::Partial)));
        }
    }
    rows
}

fn artifacts() -> PathBuf {
    let dir = repo().join("tests/artifacts");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn example_issues_use_only_features_we_know_clients_lack() {
    let project = Project::example();
    let rendered = rendered_examples(&project);
    let files: Vec<PathBuf> = rendered.iter().map(|(_, path)| path.clone()).collect();
    let report = check(&files);
    let mut failures = Vec::new();
    let mut all = Vec::new();
    let mut rows = Vec::new();
    for (issue, path) in &rendered {
        let result = report
            .get(path.to_str().unwrap())
            .unwrap_or_else(|| panic!("no verdict on {}", path.display()));
        let found = findings(result).unwrap_or_else(|unread| {
            panic!(
                "doiuse-email said what this test cannot read:\n{}",
                unread.join("\n")
            )
        });
        assert!(
            found.len() > 20,
            "{issue}: only {} findings: {result}",
            found.len()
        );
        failures.extend(judge(issue, &found));
        rows.extend(per_client(issue, &found));
        all.extend(found);
    }
    failures.extend(stale(&all));
    rows.push("known, and why:".to_string());
    for k in KNOWN {
        rows.push(format!("  {}: {}", k.feature, k.why));
    }
    let text = rows.join("\n");
    println!("{text}");
    fs::write(artifacts().join("doiuse-email.txt"), format!("{text}\n")).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn checker_looks_inside_media_queries_and_at_outlook_on_the_web() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("probe.html");
    fs::write(
        &html,
        "<!doctype html><html><head><style>\
         @media (prefers-color-scheme:dark){.probe{position:absolute}}\
         </style></head><body><p class=\"probe\">Probe</p></body></html>",
    )
    .unwrap();
    let report = check(std::slice::from_ref(&html));
    let found = findings(&report[html.to_str().unwrap()]).unwrap();
    let says = |kind: Kind, feature: &str, client: &str| {
        found
            .iter()
            .any(|f| f.kind == kind && f.feature == feature && f.client == client)
    };
    // doiuse-email alone sees neither: it skips what is inside @media and
    // knows no Outlook on the web.
    assert!(
        says(Kind::Unsupported, "position", "gmail.desktop-webmail"),
        "{found:#?}"
    );
    assert!(
        says(
            Kind::Unsupported,
            "@media (prefers-color-scheme)",
            "outlook.windows"
        ),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|f| f.client == "outlook.outlook-com"),
        "{found:#?}"
    );
}

#[test]
fn a_feature_not_in_the_allowlist_or_a_new_client_lacking_one_fails() {
    let finding = |kind, feature: &str, client: &str| Finding {
        kind,
        feature: feature.to_string(),
        client: client.to_string(),
        note: String::new(),
    };
    let failures = judge(
        "probe",
        &[
            finding(Kind::Partial, "position", "gmail.ios"),
            finding(Kind::Unsupported, "border-radius", "apple-mail.ios"),
            finding(Kind::Unsupported, "border-radius", "outlook.windows"),
            finding(Kind::Note, "margin", "hey.desktop-webmail"),
        ],
    );
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("probe: `position` is new"))
    );
    assert!(
        failures
            .iter()
            .any(|f| f.contains("`border-radius` is not supported by `apple-mail.ios`"))
    );
    assert!(
        failures
            .iter()
            .any(|f| f.contains("`hey.desktop-webmail`, a client not asked about"))
    );
}

#[test]
fn doiuse_email_is_pinned_by_a_committed_lock_file() {
    let lock: Value = serde_json::from_str(
        &fs::read_to_string(repo().join("tests/doiuse/package-lock.json")).unwrap(),
    )
    .unwrap();
    let pinned = &lock["packages"]["node_modules/doiuse-email"];
    // check.mjs reaches into this version's files: a new one needs a look.
    assert_eq!(pinned["version"], "0.4.1", "{pinned}");
    assert!(
        pinned["integrity"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha512-")),
        "{pinned}"
    );
    let package: Value = serde_json::from_str(
        &fs::read_to_string(repo().join("tests/doiuse/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        package["dependencies"]["doiuse-email"], "0.4.1",
        "an exact version, not a range"
    );
    let ignored = fs::read_to_string(repo().join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "/tests/doiuse/node_modules"));
    assert!(repo().join("scripts/setup-doiuse").exists());
}

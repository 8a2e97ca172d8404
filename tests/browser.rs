//! The HTML email and the preview server in a real browser: Debian's
//! Chromium, driven by playwright-core through `tests/browser/driver.mjs`.
//!
//! Needs `scripts/setup-browser` once (it installs /usr/bin/chromium and
//! tests/browser/node_modules); without them every test here fails saying
//! so — none is skipped. Screenshots of each width, light and dark, of the
//! preview page at 1440×900 and 390×844, and the measurements go to
//! `tests/artifacts/` (git-ignored) for a person to look at.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::project::{Project, repo};

/// A phone at its narrowest, two common phones, and the container's width.
const WIDTHS: [u32; 4] = [320, 375, 414, 600];
/// WCAG AA for normal text.
const MIN_CONTRAST: f64 = 4.5;
/// Apple's and Google's smallest comfortable touch target.
const MIN_TAP: f64 = 44.0;
const MIN_BODY_FONT: f64 = 14.0;
const SUBJECT: &str = "Rwanda, Refugees, and Our Rights under threat";
/// The subject as the email's heading shows it: no word alone on a line.
const HEADING: &str = "Rwanda, Refugees, and Our Rights under\u{a0}threat";

// ---------------------------------------------------------------- browser

/// Panics, naming the set-up script, unless Chromium and the driver's
/// node modules are installed.
fn require_setup() {
    let mut missing = Vec::new();
    if !Path::new("/usr/bin/chromium").exists() {
        missing.push("/usr/bin/chromium (Debian's chromium)");
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        missing.push("node on PATH");
    }
    if !repo()
        .join("tests/browser/node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push("tests/browser/node_modules/playwright-core");
    }
    assert!(
        missing.is_empty(),
        "the browser tests need {}: run scripts/setup-browser (as root) and try again",
        missing.join(", ")
    );
}

/// One Chromium with a fresh profile, driven over the driver's JSON lines.
struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        require_setup();
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("node")
            .arg(repo().join("tests/browser/driver.mjs"))
            .arg(profile.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start node; run scripts/setup-browser");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Browser {
            child,
            stdin,
            stdout,
            profile,
        }
    }

    /// Sends one command; the driver's answer or its error.
    fn try_call(&mut self, command: Value) -> Result<Value, String> {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "the browser driver ended (see its stderr above); command was {command}"
        );
        let answer: Value = serde_json::from_str(&line).unwrap();
        if answer["ok"] == true {
            Ok(answer["value"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or_default().to_string())
        }
    }

    #[track_caller]
    fn call(&mut self, command: Value) -> Value {
        let shown = command.to_string().chars().take(300).collect::<String>();
        self.try_call(command)
            .unwrap_or_else(|e| panic!("browser command {shown} failed:\n{e}"))
    }

    #[track_caller]
    fn eval(&mut self, js: &str) -> Value {
        self.call(json!({"op": "eval", "js": js}))
    }

    /// Waits up to `timeout` for `js` to be true; the milliseconds it took.
    #[track_caller]
    fn wait(&mut self, js: &str, timeout: Duration) -> u64 {
        self.call(json!({"op": "wait", "js": js, "timeout": timeout.as_millis() as u64}))
            .as_u64()
            .unwrap()
    }

    /// Loads the email into a `srcdoc` frame `width` px wide and measures it.
    /// Its hosted images come from [`assets`].
    fn measure(&mut self, html: &str, width: u32, scheme: &str) -> Value {
        self.call(json!({"op": "email", "html": html, "width": width, "scheme": scheme, "assets": assets()}));
        let js = with_colours(include_str!("browser/measure.js"), &[]);
        self.call(json!({"op": "eval", "frame": "#email", "js": js}))
    }

    fn screenshot_email(&mut self, name: &str) {
        let path = artifacts().join(format!("{name}.png"));
        self.call(json!({"op": "screenshot", "selector": "#email", "path": path}));
    }

    /// Closes the browser and checks that no Chromium process is left.
    fn close(mut self) {
        drop(self.stdin.take());
        let status = wait_for_exit(&mut self.child, Duration::from_secs(20))
            .expect("the browser driver did not exit after its input closed");
        assert!(status.success(), "the browser driver exited with {status}");
        let profile = self.profile.path().to_string_lossy().into_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_mentioning(&profile);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Chromium processes left after closing: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After a failed assertion: close the browser as well as we can.
        drop(self.stdin.take());
        if wait_for_exit(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A call of `script` (a function expression of `browser/`) whose first
/// argument is `browser/colours.js`, the colour and contrast helpers it
/// shares with the others, followed by `args`.
fn with_colours(script: &str, args: &[Value]) -> String {
    let mut call = format!(
        "({})({}",
        script.trim_end(),
        include_str!("browser/colours.js").trim_end()
    );
    for arg in args {
        call.push_str(&format!(", {arg}"));
    }
    call + ")"
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Pids of the processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(needle)
        {
            pids.push(pid);
        }
    }
    pids
}

fn artifacts() -> PathBuf {
    let dir = repo().join("tests/artifacts");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The images the cases' emails show, as `web build` publishes them: one
/// folder for all, as the names are content hashes.
fn assets() -> PathBuf {
    let dir = artifacts().join("assets");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds the project's site and adds its images to [`assets`].
fn publish_assets(project: &Project) {
    project
        .run(&["web", "build", "--out", "site"])
        .expect_code(0);
    for entry in fs::read_dir(project.path("site/assets")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), assets().join(entry.file_name())).unwrap();
    }
}

/// Prints a table and keeps it beside the screenshots.
fn report(name: &str, header: &str, rows: &[String]) {
    let text = format!("{header}\n{}\n", rows.join("\n"));
    println!("{text}");
    fs::write(artifacts().join(format!("{name}.txt")), text).unwrap();
}

// ---------------------------------------------------------- the email

/// An email to measure: a name for the artefacts and its HTML part.
struct Case {
    name: &'static str,
    html: String,
}

/// Both example issues as `preview --out` writes them, and the first again
/// with cards of every kind (`support::cards`) and a wide image in the
/// letter, so that there are images to scale (the driver answers other
/// image requests with a 1200 × 400 picture).
fn cases() -> Vec<Case> {
    let render = |project: &Project, issue: &str| {
        let out = project.path(&format!("out/{issue}"));
        project
            .run(&[
                "preview",
                &format!("issues/{issue}.toml"),
                "--out",
                out.to_str().unwrap(),
            ])
            .expect_code(0);
        fs::read_to_string(out.join("index.html")).unwrap()
    };
    let example = Project::example();
    let images = support::cards::project();
    images.edit(
        "issues/2022-07-13.toml",
        "letter = \"\"\"\n",
        "letter = \"\"\"\n![Supporters outside Parliament](https://www.renecassin.org/images/parliament.jpg)\n\n",
    );
    publish_assets(&example);
    publish_assets(&images);
    vec![
        Case {
            name: "2022-07-13",
            html: render(&example, "2022-07-13"),
        },
        Case {
            name: "2020-12-10",
            html: render(&example, "2020-12-10"),
        },
        Case {
            name: "2022-07-13-images",
            html: render(&images, "2022-07-13"),
        },
    ]
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn email_fits_every_width_from_phone_to_desktop() {
    let cases = cases();
    let mut browser = Browser::launch();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        for width in WIDTHS {
            let m = browser.measure(&case.html, width, "light");
            browser.screenshot_email(&format!("{}-{width}-light", case.name));
            let at = format!("{} at {width}px", case.name);
            let w = f64::from(width);
            if num(&m["width"]) != w {
                failures.push(format!("{at}: the frame is {} px wide inside", m["width"]));
            }
            let scroll = num(&m["scrollWidth"]);
            if scroll > w {
                failures.push(format!(
                    "{at}: scrolls sideways: document {scroll} px wide; widest element {}",
                    m["widest"]
                ));
            }
            for img in m["images"].as_array().unwrap() {
                if img["loaded"] != true {
                    failures.push(format!("{at}: image {} did not load", img["src"]));
                }
                if num(&img["width"]) > w || num(&img["right"]) > w || num(&img["left"]) < 0.0 {
                    failures.push(format!("{at}: image wider than the frame: {img}"));
                }
            }
            let paragraphs = m["paragraphs"].as_array().unwrap();
            let min_size = |in_card: bool| {
                paragraphs
                    .iter()
                    .filter(|p| p["inCard"] == in_card)
                    .map(|p| num(&p["size"]))
                    .fold(f64::INFINITY, f64::min)
            };
            let (body, footer) = (min_size(true), min_size(false));
            for p in paragraphs {
                let size = num(&p["size"]);
                let (least, part) = if p["inCard"] == true {
                    (MIN_BODY_FONT, "body text")
                } else {
                    (MIN_BODY_FONT, "footer text")
                };
                if size < least {
                    failures.push(format!(
                        "{at}: {part} at {size}px (under {least}px): {}",
                        p["element"]
                    ));
                }
            }
            let button = &m["button"];
            let (height, left, right) = (
                num(&button["height"]),
                num(&button["left"]),
                num(&button["right"]),
            );
            if button.is_null() {
                failures.push(format!("{at}: no donate button (a.button-link)"));
            } else {
                if height.is_nan() || height < MIN_TAP {
                    failures.push(format!("{at}: the donate button is {height}px tall"));
                }
                if left < 0.0 || right > w {
                    failures.push(format!(
                        "{at}: the donate button runs from {left} to {right}px, outside the frame"
                    ));
                }
            }
            rows.push(format!(
                "{:<18} {width:>5} {scroll:>6} {body:>9} {footer:>11} {height:>9.1} {right:>9.1} {:>6}",
                case.name,
                m["images"].as_array().unwrap().len()
            ));
        }
    }
    report(
        "layout",
        "case               width scroll body-font footer-font button-h button-right images",
        &rows,
    );
    browser.close();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn email_text_has_enough_contrast_in_light_and_dark_mode() {
    let cases = cases();
    let mut browser = Browser::launch();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in cases.iter().take(2) {
        for width in WIDTHS {
            let mut row = format!("{:<18} {width:>5}", case.name);
            for scheme in ["light", "dark"] {
                let m = browser.measure(&case.html, width, scheme);
                if scheme == "dark" {
                    browser.screenshot_email(&format!("{}-{width}-dark", case.name));
                }
                let at = format!("{} at {width}px, {scheme}", case.name);
                assert_eq!(
                    m["dark"],
                    scheme == "dark",
                    "{at}: colour scheme not emulated"
                );
                let texts = m["texts"].as_array().unwrap();
                assert!(texts.len() > 20, "{at}: only {} texts found", texts.len());
                let mut least = f64::INFINITY;
                let mut worst = String::new();
                for t in texts {
                    let ratio = num(&t["ratio"]);
                    if ratio < least {
                        least = ratio;
                        let text = |key: &str| t[key].as_str().unwrap_or_default().to_string();
                        worst = format!(
                            "{} {} on {}",
                            text("element"),
                            text("colour"),
                            text("background")
                        );
                    }
                    if ratio.is_nan() || ratio < MIN_CONTRAST {
                        failures.push(format!(
                            "{at}: contrast {ratio}:1 for {} ({} on {})",
                            t["element"], t["colour"], t["background"]
                        ));
                    }
                }
                row.push_str(&format!(" {least:>6.2} {worst}"));
            }
            rows.push(row);
        }
    }
    report(
        "contrast",
        "case               width  least-light (text)  least-dark (text)",
        &rows,
    );
    browser.close();
    failures.dedup();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn email_markup_is_accessible() {
    let cases = cases();
    let mut browser = Browser::launch();
    let mut failures = Vec::new();
    for case in &cases {
        let m = browser.measure(&case.html, 600, "light");
        let at = case.name;
        if m["lang"].as_str().is_none_or(|l| l.trim().is_empty()) {
            failures.push(format!("{at}: <html> has no lang"));
        }
        if m["title"].as_str().is_none_or(|t| t.trim().is_empty()) {
            failures.push(format!("{at}: no <title>"));
        }
        if m["tablesWithoutRole"] != 0 || m["tables"] == 0 {
            failures.push(format!(
                "{at}: {} of {} tables lack role=\"presentation\"",
                m["tablesWithoutRole"], m["tables"]
            ));
        }
        let headings = m["headings"].as_array().unwrap();
        let mut previous = 0;
        for h in headings {
            let level = h["level"].as_u64().unwrap();
            if level > previous + 1 {
                failures.push(format!(
                    "{at}: <h{level}> {} follows <h{previous}>: a level is skipped",
                    h["text"]
                ));
            }
            previous = level;
        }
        if headings.first().is_none_or(|h| h["level"] != 1) {
            failures.push(format!("{at}: the first heading is not <h1>"));
        }
        if !m["imagesWithoutAlt"].as_array().unwrap().is_empty() {
            failures.push(format!(
                "{at}: images without alt: {}",
                m["imagesWithoutAlt"]
            ));
        }
        for link in m["links"].as_array().unwrap() {
            let text = link["text"].as_str().unwrap_or_default();
            if link_text_is_poor(text) {
                failures.push(format!(
                    "{at}: link text {text:?} says nothing about {}",
                    link["href"]
                ));
            }
        }
    }
    browser.close();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cards_fit_every_width_without_overflow() {
    let cases = cases();
    let case = cases
        .iter()
        .find(|c| c.name == "2022-07-13-images")
        .unwrap();
    let mut browser = Browser::launch();
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for width in WIDTHS {
        browser.measure(&case.html, width, "light");
        let m = browser
            .call(json!({"op": "eval", "frame": "#email", "js": include_str!("browser/cards.js")}));
        let at = format!("cards at {width}px");
        let w = f64::from(width);
        let cards = m["cards"].as_array().unwrap();
        // Five events and the posts of the example, and the fixture's four.
        if cards.len() < 9 {
            failures.push(format!("{at}: only {} cards", cards.len()));
        }
        for card in cards {
            let title = card["title"].as_str().unwrap_or_default();
            let b = &card["box"];
            if num(&b["left"]) < 0.0 || num(&b["right"]) > w {
                failures.push(format!(
                    "{at}: card {title:?} runs from {} to {}",
                    b["left"], b["right"]
                ));
            }
            for e in card["outside"].as_array().unwrap() {
                failures.push(format!("{at}: in card {title:?}, {e} is drawn outside it"));
            }
            if let Some(book) = card["book"].as_object() {
                let height = num(&book["height"]);
                if height < MIN_TAP {
                    failures.push(format!(
                        "{at}: the booking button of {title:?} is {height}px tall"
                    ));
                }
            }
            if card["badge"].is_object() && num(&card["badge"]["width"]) != 56.0 {
                failures.push(format!(
                    "{at}: the date badge of {title:?} is {} px wide",
                    card["badge"]["width"]
                ));
            }
            let thumbnail = &card["thumbnail"];
            if thumbnail.is_object() {
                if thumbnail["loaded"] != true || num(&thumbnail["width"]) != 128.0 {
                    failures.push(format!("{at}: the thumbnail of {title:?}: {thumbnail}"));
                }
                let columns = card["columns"].as_array().unwrap();
                let side_by_side = columns.len() == 2
                    && num(&columns[1]["top"]) < num(&columns[0]["bottom"])
                    && num(&columns[1]["left"]) >= num(&columns[0]["right"]);
                // Room for both columns (144 + 344 px) only in the widest.
                if side_by_side != (width == 600) {
                    failures.push(format!(
                        "{at}: {title:?} has its columns side by side: {side_by_side}; {columns:?}"
                    ));
                }
                rows.push(format!(
                    "{width:>5} {:<28} {}",
                    title,
                    if side_by_side {
                        "side by side"
                    } else {
                        "stacked"
                    }
                ));
            }
        }
        for span in m["hidden"].as_array().unwrap() {
            if num(&span["width"]) > 1.0 || num(&span["height"]) > 1.0 {
                failures.push(format!(
                    "{at}: the hidden words {:?} take {}×{} px",
                    span["text"], span["width"], span["height"]
                ));
            }
        }
        browser.screenshot_email(&format!("cards-{width}-light"));
    }
    // What a screen reader announces: the titles are in the links' names.
    let tree = browser.call(json!({"op": "aria", "frame": "#email"}));
    let tree = tree.as_str().unwrap_or_default();
    for name in [
        "Read more about Card Test Post",
        "Read more about Hands Off our Human Rights Act!",
        "Book a place for Card Test Workshop",
        "Add Card Test Talk to calendar",
    ] {
        if !tree.contains(&format!("link \"{name}\"")) {
            failures.push(format!("no link named {name:?} in the accessibility tree"));
        }
    }
    fs::write(artifacts().join("cards-aria.txt"), tree).unwrap();
    report(
        "cards",
        "width post-card                    thumbnail",
        &rows,
    );
    browser.close();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Empty, a bare URL, or "click here".
fn link_text_is_poor(text: &str) -> bool {
    let t = text.trim().to_lowercase();
    let bare_url = t.starts_with("http://")
        || t.starts_with("https://")
        || t.starts_with("www.")
        || (!t.contains(' ') && !t.contains('@') && t.contains('.') && t.contains('/'));
    t.is_empty()
        || bare_url
        || ["click here", "here", "click", "this link", "link"].contains(&t.as_str())
}

#[test]
fn poor_link_texts_are_recognised() {
    for poor in [
        "",
        "https://www.renecassin.org/donate/",
        "www.renecassin.org",
        "renecassin.org/donate",
        "Click here",
    ] {
        assert!(link_text_is_poor(poor), "{poor:?}");
    }
    for fine in [
        "Donate today",
        "office@renecassin.example.org",
        "View this email in your browser",
    ] {
        assert!(!link_text_is_poor(fine), "{fine:?}");
    }
}

// ----------------------------------------------------- clients' quirks

/// The widths where the footer and the body must share their left edge:
/// the media query's breakpoint (480 px) and a desktop wider than the
/// container among them.
const EDGE_WIDTHS: [u32; 6] = [320, 375, 414, 480, 600, 680];
/// WCAG 1.4.11: non-text contrast for the parts of a control.
const MIN_NON_TEXT: f64 = 3.0;

impl Browser {
    /// Loads the email and measures it with `browser/clients.js`; with
    /// `outlook` ("word" or "naive"), after simulating Outlook for Windows.
    fn clients(&mut self, html: &str, width: u32, scheme: &str, outlook: Option<&str>) -> Value {
        self.call(json!({"op": "email", "html": html, "width": width, "scheme": scheme}));
        let js = with_colours(
            include_str!("browser/clients.js"),
            &[json!({ "outlook": outlook })],
        );
        self.call(json!({"op": "eval", "frame": "#email", "js": js}))
    }
}

/// The four paddings of a `[top, right, bottom, left]` array, as CSS writes them.
fn paddings(v: &Value) -> String {
    let p: Vec<String> = v
        .as_array()
        .map(|a| a.iter().map(|n| format!("{}px", num(n))).collect())
        .unwrap_or_default();
    p.join(" ")
}

#[test]
fn button_holds_its_size_when_outlook_drops_the_links_padding() {
    let cases = cases();
    let mut browser = Browser::launch();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in cases.iter().take(2) {
        for width in [320, 375, 600] {
            let at = format!("{} at {width}px", case.name);
            let designed = browser.clients(&case.html, width, "light", None);
            let word = browser.clients(&case.html, width, "light", Some("word"));
            let naive = browser.clients(&case.html, width, "light", Some("naive"));
            let (d, w, n) = (&designed["button"], &word["button"], &naive["button"]);
            assert!(!d.is_null(), "{at}: no td.button with a .button-link in it");
            // The padding Word reads is on the cell, and it is the link's.
            let link_padding = paddings(&d["linkPadding"]);
            let alt = d["msoPaddingAlt"].as_str().unwrap_or_default();
            let alt_css = alt
                .split_whitespace()
                .map(|p| p.trim_end_matches("px").parse::<f64>().unwrap_or(f64::NAN))
                .collect::<Vec<_>>();
            let alt_full = match alt_css[..] {
                [a] => [a, a, a, a],
                [a, b] => [a, b, a, b],
                [a, b, c] => [a, b, c, b],
                [a, b, c, e] => [a, b, c, e],
                _ => [f64::NAN; 4],
            };
            if paddings(&json!(alt_full)) != link_padding {
                failures.push(format!(
                    "{at}: the cell's mso-padding-alt is {alt:?}, the link's padding {link_padding}"
                ));
            }
            if paddings(&w["linkPadding"]) != "0px 0px 0px 0px" {
                failures.push(format!(
                    "{at}: Outlook's links kept padding {}",
                    w["linkPadding"]
                ));
            }
            let (dh, dw) = (num(&d["cell"]["height"]), num(&d["cell"]["width"]));
            let (wh, ww) = (num(&w["cell"]["height"]), num(&w["cell"]["width"]));
            if wh.is_nan() || wh < MIN_TAP.max(dh - 1.0) {
                failures.push(format!(
                    "{at}: in Outlook the button is {wh:.1}px tall (designed {dh:.1}px, at least {MIN_TAP}px)"
                ));
            }
            if ww.is_nan() || ww < dw - 1.0 {
                failures.push(format!(
                    "{at}: in Outlook the button is {ww:.1}px wide (designed {dw:.1}px)"
                ));
            }
            rows.push(format!(
                "{:<12} {width:>5} {:>9.1}x{:<5.1} {:>9.1}x{:<5.1} {:>9.1}x{:<5.1}  {}",
                case.name,
                dw,
                dh,
                ww,
                wh,
                num(&n["cell"]["width"]),
                num(&n["cell"]["height"]),
                alt
            ));
        }
    }
    report(
        "button-outlook",
        "case         width  designed(wxh)   outlook(wxh)  no-mso-pad(wxh)  cell mso-padding-alt",
        &rows,
    );
    browser.close();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rules_and_the_button_edge_have_non_text_contrast_in_both_schemes() {
    let cases = cases();
    let mut browser = Browser::launch();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in cases.iter().take(2) {
        for width in [375, 600] {
            for scheme in ["light", "dark"] {
                let m = browser.clients(&case.html, width, scheme, None);
                browser.screenshot_email(&format!("{}-{width}-{scheme}", case.name));
                let at = format!("{} at {width}px, {scheme}", case.name);
                assert_eq!(
                    m["dark"],
                    scheme == "dark",
                    "{at}: colour scheme not emulated"
                );
                let rules = m["rules"].as_array().unwrap();
                assert!(rules.len() >= 3, "{at}: only {} rules found", rules.len());
                let ratios: Vec<f64> = rules.iter().map(|r| num(&r["ratio"])).collect();
                let least = ratios.iter().copied().fold(f64::INFINITY, f64::min);
                let most = ratios.iter().copied().fold(0.0, f64::max);
                // Rules divide, they do not shout: below body text's 4.5:1
                // always; in dark mode at least 3:1 (WCAG 1.4.11), in light
                // mode at least visible.
                let floor = if scheme == "dark" { MIN_NON_TEXT } else { 1.3 };
                for (rule, ratio) in rules.iter().zip(&ratios) {
                    let (floor, ceiling) = if rule["component"] == true {
                        (MIN_NON_TEXT, f64::INFINITY)
                    } else {
                        (floor, MIN_CONTRAST)
                    };
                    if ratio.is_nan() || *ratio < floor || *ratio >= ceiling {
                        failures.push(format!(
                            "{at}: rule {}:1 ({} on {}, {} border of {}), want {floor}:1 to under {ceiling}:1",
                            ratio, rule["colour"], rule["background"], rule["side"], rule["element"]
                        ));
                    }
                }
                let button = &m["button"];
                let edge = num(&button["edge"]);
                if edge.is_nan() || edge < MIN_NON_TEXT {
                    failures.push(format!(
                        "{at}: the button's edge is {edge}:1 ({} on {})",
                        button["fill"], button["around"]
                    ));
                }
                let text = num(&button["textContrast"]);
                if text.is_nan() || text < MIN_CONTRAST {
                    failures.push(format!("{at}: the button's text is {text}:1 on its fill"));
                }
                rows.push(format!(
                    "{:<12} {width:>5} {scheme:<5} {:>2} {least:>5.2} {most:>5.2} {} {edge:>5.2} {} {text:>5.2}",
                    case.name,
                    rules.len(),
                    rules[0]["colour"].as_str().unwrap_or_default(),
                    button["fill"].as_str().unwrap_or_default(),
                ));
            }
        }
    }
    report(
        "non-text-contrast",
        "case         width scheme  n rule-min rule-max colour  button-edge fill  text",
        &rows,
    );
    browser.close();
    failures.dedup();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn footer_text_starts_where_the_body_text_starts_at_every_width() {
    let cases = cases();
    let mut browser = Browser::launch();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in cases.iter().take(2) {
        for width in EDGE_WIDTHS {
            let m = browser.clients(&case.html, width, "light", None);
            let at = format!("{} at {width}px", case.name);
            // Quotes, lists and the cards are indented on purpose;
            // everything else starts at the one edge.
            let lefts = |key: &str| -> Vec<(f64, String)> {
                m[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|b| b["indented"] != true)
                    .map(|b| (num(&b["left"]), b["element"].to_string()))
                    .collect()
            };
            let (body, footer) = (lefts("body"), lefts("footer"));
            assert!(body.len() > 5 && footer.len() >= 3, "{at}: {m}");
            let edge = body.iter().map(|b| b.0).fold(f64::INFINITY, f64::min);
            for (left, element) in body.iter().chain(&footer) {
                if left.is_nan() || (left - edge).abs() > 0.5 {
                    failures.push(format!(
                        "{at}: {element} starts at x={left}, the body at x={edge}"
                    ));
                }
            }
            rows.push(format!(
                "{:<12} {width:>5} {edge:>6.1} {:>6.1}",
                case.name, footer[0].0
            ));
        }
    }
    report("left-edges", "case         width   body footer", &rows);
    browser.close();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn heading_never_leaves_one_word_on_its_last_line() {
    let cases = cases();
    let mut browser = Browser::launch();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in cases.iter().take(2) {
        for width in EDGE_WIDTHS {
            let m = browser.clients(&case.html, width, "light", None);
            let at = format!("{} at {width}px", case.name);
            let heading = &m["heading"];
            let text = heading["text"].as_str().unwrap();
            let words: Vec<&str> = text.split_whitespace().collect();
            // The subject's last two words, joined by a no-break space.
            let joined = format!("{}\u{a0}{}", words[words.len() - 2], words[words.len() - 1]);
            if words.len() >= 2 && !text.contains(&joined) {
                failures.push(format!(
                    "{at}: the heading {text:?} has no U+00A0 before its last word"
                ));
            }
            if m["title"].as_str().unwrap().contains('\u{a0}') {
                failures.push(format!(
                    "{at}: the <title> has a no-break space: {}",
                    m["title"]
                ));
            }
            let lines: Vec<&str> = heading["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect();
            let last = lines.last().copied().unwrap_or_default();
            if lines.len() > 1 && last.split(' ').count() < 2 {
                failures.push(format!(
                    "{at}: the heading's last line is one word: {lines:?}"
                ));
            }
            if num(&heading["right"]) > f64::from(width)
                || num(&m["scrollWidth"]) > f64::from(width)
            {
                failures.push(format!("{at}: the heading runs past the frame: {heading}"));
            }
            rows.push(format!("{:<12} {width:>5} {lines:?}", case.name));
        }
    }
    report("heading-lines", "case         width lines", &rows);
    browser.close();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----------------------------------------------------- the preview server

/// `newsletter preview … --serve --port 0` running in a project.
struct Served {
    child: Child,
    url: String,
    port: u16,
    stderr: Arc<Mutex<String>>,
    /// The thread copying the child's stderr into `stderr`.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    fn start(project: &Project, issue: &str) -> Served {
        let mut child = project
            .command(&["preview", issue, "--serve", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .unwrap();
        let url = url.trim().to_string();
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "first line is not http://127.0.0.1:PORT/ but {url:?}; stderr: {}",
                    stderr.lock().unwrap()
                )
            });
        Served {
            child,
            url,
            port,
            stderr,
            reader: Some(reader),
        }
    }

    /// All the server wrote to stderr, once it has exited: waits for the
    /// copying thread to reach the end of the pipe.
    fn stderr_at_exit(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.stderr.lock().unwrap().clone()
    }

    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "the server exited ({status}); stderr:\n{}",
                self.stderr.lock().unwrap()
            );
        }
    }

    /// A raw HTTP exchange; the whole answer.
    fn raw(&self, request: &[u8]) -> String {
        String::from_utf8_lossy(&self.raw_bytes(request)).into_owned()
    }

    /// A raw HTTP exchange; the whole answer, as bytes.
    fn raw_bytes(&self, request: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer
    }

    /// Kills the server (SIGKILL) and checks nothing is left of it.
    fn kill(mut self) {
        let pid = self.child.id();
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still exists"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", self.port)).is_err(),
            "port {} still answers",
            self.port
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JavaScript: the text of a header's cell on the page.
fn header(name: &str) -> String {
    format!(r#"document.querySelector('td[data-header="{name}"]')?.textContent"#)
}

/// JavaScript: the phone frame's document.
const PHONE: &str = "document.getElementById('phone')?.contentDocument";

#[test]
fn preview_server_shows_the_issue_and_follows_every_edit() {
    let project = Project::example();
    // One finding to show: a link that is not https://.
    project.edit(
        "issues/2022-07-13.toml",
        "(https://www.renecassin.org/briefings/human-rights-act/)",
        "(http://www.renecassin.org/briefings/human-rights-act/)",
    );
    let issue = "issues/2022-07-13.toml";
    let original = project.read(issue);
    let check = project.run(&["check", issue, "--format", "json"]);
    let report: Value = serde_json::from_str(&check.stdout).unwrap();
    let codes: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    assert!(codes.contains(&"http-link".to_string()), "{}", check.stdout);

    let mut served = Served::start(&project, issue);
    let mut browser = Browser::launch();
    browser.call(json!({"op": "open", "url": served.url, "width": 1280, "height": 900}));

    // The page: both frames at their widths, headers, size, findings, text.
    let widths = browser.eval(
        "['desktop', 'phone'].map(id => { const f = document.getElementById(id); \
         return [f.contentWindow.innerWidth, f.getBoundingClientRect().width]; })",
    );
    assert_eq!(widths[1], json!([375, 375]), "phone frame: {widths}");
    assert!(num(&widths[0][0]) >= 600.0, "desktop frame: {widths}");
    for name in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ] {
        let value = browser.eval(&header(name));
        assert!(
            value.as_str().is_some_and(|v| !v.is_empty()),
            "header {name}: {value}"
        );
    }
    assert_eq!(browser.eval(&header("Subject")), SUBJECT);
    assert_eq!(
        browser.eval(&header("From")),
        "René Cassin <newsletter@renecassin.example.org>"
    );
    assert!(
        browser
            .eval(&header("To"))
            .as_str()
            .unwrap()
            .contains("ruth.abrahams@example.org")
    );
    assert!(
        browser
            .eval(&header("List-Unsubscribe"))
            .as_str()
            .unwrap()
            .contains("https://news.renecassin.example.org/unsubscribe/")
    );
    assert!(
        browser
            .eval("document.getElementById('size').textContent")
            .as_str()
            .unwrap()
            .contains(" KB")
    );
    for code in &codes {
        let shown = browser.eval(&format!(
            "document.querySelector('#findings li[data-code=\"{code}\"]')?.textContent"
        ));
        assert!(shown.is_string(), "finding {code} not on the page");
    }
    let http =
        browser.eval("document.querySelector('#findings li[data-code=\"http-link\"]').textContent");
    assert!(
        http.as_str().unwrap().contains("2022-07-13.toml:"),
        "{http}"
    );
    assert!(
        browser
            .eval("document.getElementById('text').textContent")
            .as_str()
            .unwrap()
            .contains("Dear Ruth")
    );
    assert_eq!(
        browser.eval(&format!("{PHONE}.querySelector('h1').textContent")),
        HEADING
    );
    assert!(browser.eval(&format!("{PHONE}.body.textContent.includes('Dear Ruth')")) == true);
    browser.call(json!({"op": "screenshot", "path": artifacts().join("preview-page.png"), "fullPage": false}));

    // The picker personalises for another subscriber.
    let options = browser.eval("[...document.querySelectorAll('#as option')].map(o => o.value)");
    let options = options.as_array().unwrap();
    assert!((2..=50).contains(&options.len()), "{options:?}");
    assert!(
        options.contains(&json!("zoe.brightman@example.com")),
        "{options:?}"
    );
    let url = browser
        .call(json!({"op": "select", "selector": "#as", "value": "zoe.brightman@example.com"}));
    assert!(
        url.as_str()
            .unwrap()
            .contains("as=zoe.brightman%40example.com"),
        "{url}"
    );
    assert!(
        browser
            .eval(&header("To"))
            .as_str()
            .unwrap()
            .contains("Zoë Brightman <zoe.brightman@example.com>")
    );
    assert!(browser.eval(&format!("{PHONE}.body.textContent.includes('Dear Zoë')")) == true);

    // A new subject shows without a reload, as text (escaped). The page
    // follows within a second on a quiet machine (printed below); the limit
    // is generous because a loaded CI machine (three builds on two cores
    // once took it past 3 s) must not fail a test about *whether* it follows.
    let limit = Duration::from_secs(15);
    let subject = "Live <b>reload</b> & more";
    project.edit(
        issue,
        &format!("subject = \"{SUBJECT}\""),
        &format!("subject = \"{subject}\""),
    );
    let took = browser.wait(&format!("{} === {subject:?}", header("Subject")), limit);
    println!("new subject shown after {took} ms");
    assert_eq!(
        browser.eval("document.querySelectorAll('#headers b').length"),
        0
    );
    assert_eq!(
        browser.eval(&format!("{PHONE}.querySelector('h1').textContent")),
        "Live <b>reload</b> &\u{a0}more"
    );
    assert_eq!(
        browser.eval(&format!("{PHONE}.querySelectorAll('h1 b').length")),
        0
    );
    assert!(
        browser
            .eval(&header("To"))
            .as_str()
            .unwrap()
            .contains("Zoë"),
        "the picked subscriber is kept"
    );

    // The theme, the configuration and the archive are watched too.
    project.edit(
        "templates/theme.toml",
        "accent-colour = \"#8a1538\"",
        "accent-colour = \"#1d4f91\"",
    );
    browser.wait(
        &format!("getComputedStyle({PHONE}.querySelector('h1')).color === 'rgb(29, 79, 145)'"),
        limit,
    );
    project.edit(
        "newsletter.toml",
        "charity-number = \"1117472\"",
        "charity-number = \"7654321\"",
    );
    browser.wait(
        &format!("{PHONE}.body.textContent.includes('number 7654321')"),
        limit,
    );
    project.edit(
        "archive/posts.toml",
        "title = \"Hands Off our Human Rights Act!\"",
        "title = \"Hands Off our Human Rights Act, now!\"",
    );
    browser.wait(
        &format!("{PHONE}.body.textContent.includes('Human Rights Act, now!')"),
        limit,
    );

    // A broken file shows its error on the page; the server lives on.
    project.edit(
        issue,
        &format!("subject = \"{subject}\""),
        "subject = \"Broken <i>toml",
    );
    browser.wait(
        "document.getElementById('error')?.textContent.includes('2022-07-13.toml')",
        limit,
    );
    let error = browser.eval("document.getElementById('error').textContent");
    println!("error shown: {error}");
    assert_eq!(
        browser.eval("document.querySelectorAll('#error i').length"),
        0
    );
    assert!(browser.eval("document.querySelector('#findings li.error') !== null") == true);
    assert!(browser.eval("document.getElementById('phone') === null") == true);
    browser.call(json!({"op": "screenshot", "path": artifacts().join("preview-page-error.png"), "fullPage": false}));
    served.assert_running();
    // An error that quotes the file shows it as text.
    fs::write(
        project.path(issue),
        original.replace("\"hands-off-our-human-rights-act\"", "\"<i>gone</i>\""),
    )
    .unwrap();
    browser.wait(
        "document.getElementById('error')?.textContent.includes('no post with id `<i>gone</i>`')",
        limit,
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#error i, #findings i').length"),
        0
    );
    served.assert_running();

    // Fixing it recovers.
    fs::write(project.path(issue), &original).unwrap();
    browser.wait(
        &format!(
            "!document.getElementById('error') && {} === {SUBJECT:?}",
            header("Subject")
        ),
        limit,
    );
    assert!(browser.eval(&format!("{PHONE}.body.textContent.includes('Dear Zoë')")) == true);

    browser.close();
    served.assert_running();
    served.kill();
}

#[test]
fn preview_server_answers_are_private_and_uncached() {
    let project = Project::example();
    let served = Served::start(&project, "issues/2020-12-10.toml");
    let host = format!("Host: 127.0.0.1:{}", served.port);
    for path in ["/", "/email.html", "/nothing"] {
        let answer = served.raw(format!("GET {path} HTTP/1.1\r\n{host}\r\n\r\n").as_bytes());
        let head = answer.split("\r\n\r\n").next().unwrap_or_default();
        for header in [
            "\r\nCache-Control: no-store\r\n",
            "\r\nX-Content-Type-Options: nosniff\r\n",
            "\r\nReferrer-Policy: no-referrer\r\n",
            "\r\nContent-Security-Policy: ",
        ] {
            assert!(head.contains(header), "{path}: no {header:?} in {head}");
        }
    }
}

#[test]
fn preview_server_answers_get_on_127_0_0_1_only_and_stops_on_ctrl_c() {
    let project = Project::example();
    let mut served = Served::start(&project, "issues/2020-12-10.toml");
    let host = format!("Host: 127.0.0.1:{}", served.port);
    let first_line = |answer: &str| answer.lines().next().unwrap_or_default().to_string();

    let page = served.raw(format!("GET / HTTP/1.1\r\n{host}\r\n\r\n").as_bytes());
    assert!(
        page.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        first_line(&page)
    );
    assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
    let email = served.raw(
        format!("GET /email.html?as=jose.garcia%40example.org HTTP/1.1\r\n{host}\r\n\r\n")
            .as_bytes(),
    );
    assert!(
        email.starts_with("HTTP/1.1 200 OK\r\n") && email.contains("José"),
        "{}",
        first_line(&email)
    );
    let missing = served.raw(format!("GET /nothing HTTP/1.1\r\n{host}\r\n\r\n").as_bytes());
    assert!(
        missing.starts_with("HTTP/1.1 404 "),
        "{}",
        first_line(&missing)
    );
    let post =
        served.raw(format!("POST / HTTP/1.1\r\n{host}\r\nContent-Length: 0\r\n\r\n").as_bytes());
    assert!(post.starts_with("HTTP/1.1 405 "), "{}", first_line(&post));
    // A page from another site that made its name point to 127.0.0.1.
    let rebound = served.raw(b"GET / HTTP/1.1\r\nHost: attacker.example:6397\r\n\r\n");
    assert!(
        rebound.starts_with("HTTP/1.1 421 "),
        "{}",
        first_line(&rebound)
    );
    let huge = format!(
        "GET / HTTP/1.1\r\n{host}\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let huge = served.raw(huge.as_bytes());
    assert!(huge.starts_with("HTTP/1.1 431 "), "{}", first_line(&huge));
    let events = {
        let mut stream = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(format!("GET /events HTTP/1.1\r\n{host}\r\n\r\n").as_bytes())
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = String::new();
        while !got.contains("data: ") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "events ended: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    };
    assert!(
        events.contains("Content-Type: text/event-stream"),
        "{events}"
    );

    // Listening on 127.0.0.1 only: not on this machine's other addresses.
    let listening = fs::read_to_string("/proc/net/tcp").unwrap();
    let port_hex = format!(":{:04X} ", served.port);
    let local: Vec<&str> = listening
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("0A") && l.contains(&port_hex))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        local,
        [format!("0100007F:{:04X}", served.port)],
        "listening sockets"
    );
    assert!(
        !fs::read_to_string("/proc/net/tcp6")
            .unwrap_or_default()
            .contains(&port_hex),
        "listening on IPv6 too"
    );

    // Ctrl-C: a clean stop with exit code 0, even with an event stream open.
    served.assert_running();
    let status = Command::new("kill")
        .args(["-INT", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_for_exit(&mut served.child, Duration::from_secs(10))
        .expect("the server did not stop on SIGINT");
    let stderr = served.stderr_at_exit();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("Stopped."), "{stderr}");
}

/// `NAME.HASH.EXT`, the name a project image has under `assets/`.
fn hashed(project: &Project, file: &str) -> String {
    use sha2::Digest;
    let path = Path::new(file);
    let digest = hex::encode(sha2::Sha256::digest(fs::read(project.path(file)).unwrap()));
    format!(
        "{}.{}.{}",
        path.file_stem().unwrap().to_str().unwrap(),
        &digest[..8],
        path.extension().unwrap().to_str().unwrap()
    )
}

/// The 2020 issue: it has a signature as well as the logo.
const ISSUE_2020: &str = "issues/2020-12-10.toml";

#[test]
fn preview_frames_show_the_logo_and_signature_from_the_project_files() {
    let project = Project::example();
    let served = Served::start(&project, ISSUE_2020);
    let mut browser = Browser::launch();
    browser.call(json!({"op": "open", "url": served.url, "width": 1440, "height": 900}));
    // Each frame's images from `/assets/`, once every one has loaded or failed.
    let images = "(() => { const frames = ['desktop', 'phone'].map(id => \
        document.getElementById(id)?.contentDocument); \
        if (!frames.every(d => d && d.URL === 'about:srcdoc' && d.images.length > 0 \
            && [...d.images].every(i => i.complete))) return null; \
        return frames.map(d => [...d.images].map(i => [i.getAttribute('src'), i.naturalWidth])); })()";
    browser.wait(images, Duration::from_secs(10));
    let shown = browser.eval(images);
    let logo = format!("/assets/{}", hashed(&project, "templates/logo.png"));
    let signature = format!("/assets/{}", hashed(&project, "templates/signature.png"));
    // Loaded: their pixel widths (the files are 2x).
    let wanted = json!([[logo, 400], [signature, 440]]);
    assert_eq!(shown, json!([wanted, wanted]), "desktop, phone");
    let note = browser.eval("document.getElementById('images-note')?.textContent");
    assert_eq!(
        note,
        "Images are shown from the project's files. The sent email loads them from the site: run newsletter web build, then upload site/."
    );
    browser.close();
    served.kill();
}

#[test]
fn preview_server_answers_assets_with_the_issue_images_and_nothing_else() {
    let project = Project::example();
    // A real image of the project that the issue does not show.
    fs::copy(
        project.path("templates/signature.png"),
        project.path("templates/unused.png"),
    )
    .unwrap();
    let served = Served::start(&project, ISSUE_2020);
    let get = |path: &str| {
        served.raw_bytes(
            format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                served.port
            )
            .as_bytes(),
        )
    };
    // The page is rendered first, as a browser asks for it before its images.
    let page = String::from_utf8(get("/")).unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    let logo = hashed(&project, "templates/logo.png");
    let answer = get(&format!("/assets/{logo}"));
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Type: image/png\r\n"), "{head}");
    assert_eq!(
        &answer[end + 4..],
        fs::read(project.path("templates/logo.png")).unwrap(),
        "the logo's bytes"
    );
    // The page reports the message as sent: its size is the written one's.
    project
        .run(&["preview", ISSUE_2020, "--out", "out"])
        .expect_code(0);
    let size = fs::metadata(project.path("out/message.eml")).unwrap().len();
    assert!(page.contains(&format!("({size} bytes)")), "size {size}");
    for path in [
        "/assets/../newsletter.toml".to_string(),
        "/assets/%2e%2e/newsletter.toml".to_string(),
        format!("/assets/{}", logo.replace(&logo[5..13], "00000000")),
        format!("/assets/{}", hashed(&project, "templates/unused.png")),
        format!("/assets/{}", hashed(&project, "templates/theme.toml")),
        "/assets/".to_string(),
    ] {
        let answer = String::from_utf8_lossy(&get(&path)).into_owned();
        assert!(answer.starts_with("HTTP/1.1 404 "), "{path}: {answer}");
    }
    served.kill();
}

// ------------------------------------------- the preview page's layout

const ISSUE: &str = "issues/2022-07-13.toml";
const PREHEADER: &str =
    "We are extremely concerned by proposals to forcibly remove asylum-seekers to Rwanda.";
/// A laptop's screen, and a common phone's.
const DESKTOP_SCREEN: (u32, u32) = (1440, 900);
const PHONE_SCREEN: (u32, u32) = (390, 844);

/// The example project with one finding to show: a link that is not
/// https:// (`http-link`, a warning on line 12).
fn project_with_a_finding() -> Project {
    let project = Project::example();
    project.edit(
        ISSUE,
        "(https://www.renecassin.org/briefings/human-rights-act/)",
        "(http://www.renecassin.org/briefings/human-rights-act/)",
    );
    project
}

/// The preview of [`ISSUE`] open in a browser at `screen`.
fn open_preview(project: &Project, screen: (u32, u32)) -> (Served, Browser) {
    let served = Served::start(project, ISSUE);
    let mut browser = Browser::launch();
    browser.call(json!({"op": "open", "url": served.url, "width": screen.0, "height": screen.1}));
    (served, browser)
}

/// JavaScript: an element's box on the screen and whether it is shown.
fn placed(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null; \
         const r = e.getBoundingClientRect(); \
         return {{ top: r.top, bottom: r.bottom, left: r.left, right: r.right, \
         shown: e.checkVisibility() && r.width > 0 && r.height > 0 }}; }})()"
    )
}

/// JavaScript: of each frame, the window's inner width, the width its
/// document is laid out at, its height, its document's height, and
/// whether the email (not the empty first document) is in it.
const FRAMES: &str = "['desktop', 'phone'].map(id => { \
    const f = document.getElementById(id); const d = f.contentDocument; \
    return { id, inner: f.contentWindow.innerWidth, layout: d.documentElement.clientWidth, \
    height: d.documentElement.clientHeight, content: d.documentElement.scrollHeight, \
    email: d.URL === 'about:srcdoc' && d.querySelector('h1') !== null }; })";

/// The frames as measured at each of ten consecutive loads of the page:
/// a fresh tab, then nine reloads (as live reload does), each measured at
/// once on its load event, without waiting.
fn frames_on_ten_loads(artifact: &str) -> Vec<Value> {
    let project = Project::example();
    let (served, mut browser) = open_preview(&project, DESKTOP_SCREEN);
    let mut loads = Vec::new();
    for n in 0..10 {
        if n > 0 {
            browser.call(json!({"op": "reload"}));
        }
        loads.push(browser.eval(FRAMES));
    }
    browser.close();
    served.kill();
    let rows: Vec<String> = loads
        .iter()
        .enumerate()
        .map(|(n, load)| {
            let f = |i: usize, key: &str| load[i][key].to_string();
            format!(
                "{:>4} {:>13} {:>7}/{:<7} {:>11} {:>7}/{:<7}",
                n + 1,
                format!("{}/{}", f(0, "inner"), f(0, "layout")),
                f(0, "height"),
                f(0, "content"),
                format!("{}/{}", f(1, "inner"), f(1, "layout")),
                f(1, "height"),
                f(1, "content"),
            )
        })
        .collect();
    report(
        artifact,
        "load desktop-width height/content phone-width height/content",
        &rows,
    );
    loads
}

/// Panics unless, on every load, the frame `index` holds the email, is
/// `wanted(width)` wide inside and is as tall as the email (nothing
/// clipped, no scroll bar of its own).
#[track_caller]
fn assert_frame_on_every_load(loads: &[Value], index: usize, wanted: impl Fn(f64) -> bool) {
    let bad: Vec<String> = loads
        .iter()
        .enumerate()
        .filter(|(_, load)| {
            let f = &load[index];
            !(f["email"] == true
                && wanted(num(&f["inner"]))
                && wanted(num(&f["layout"]))
                && num(&f["content"]) <= num(&f["height"]))
        })
        .map(|(n, load)| format!("load {}: {}", n + 1, load[index]))
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn preview_phone_frame_is_375_px_wide_inside_on_ten_consecutive_loads() {
    let loads = frames_on_ten_loads("preview-frames-phone");
    assert_frame_on_every_load(&loads, 1, |width| width == 375.0);
}

#[test]
fn preview_desktop_frame_is_at_least_600_px_wide_inside_on_ten_consecutive_loads() {
    let loads = frames_on_ten_loads("preview-frames-desktop");
    assert_frame_on_every_load(&loads, 0, |width| width >= 600.0);
}

#[test]
fn preview_page_opens_on_the_inbox_row_within_the_first_200_px() {
    let project = project_with_a_finding();
    let (served, mut browser) = open_preview(&project, DESKTOP_SCREEN);
    let row = browser.eval(&placed("#inbox"));
    let text = |browser: &mut Browser, part: &str| {
        browser.eval(&format!(
            "document.querySelector('#inbox {part}')?.textContent.trim()"
        ))
    };
    assert_eq!(row["shown"], true, "{row}");
    assert!(
        num(&row["top"]) >= 0.0 && num(&row["bottom"]) <= 200.0,
        "{row}"
    );
    assert_eq!(text(&mut browser, ".from"), "René Cassin");
    assert_eq!(text(&mut browser, ".subject"), SUBJECT);
    assert_eq!(text(&mut browser, ".preheader"), PREHEADER);
    // The date is the message's Date header, in the browser's time zone.
    let same_instant = browser.eval(&format!(
        "new Date(document.querySelector('#inbox time').dateTime).getTime() === new Date({}).getTime()",
        header("Date")
    ));
    assert_eq!(same_instant, true);
    assert!(
        text(&mut browser, ".date")
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    browser.call(json!({"op": "screenshot", "path": artifacts().join("preview-1440x900.png"), "fullPage": false}));
    browser.call(json!({"op": "screenshot", "path": artifacts().join("preview-1440x900-full.png"), "fullPage": true}));
    browser.close();
    served.kill();
}

#[test]
fn preview_page_keeps_the_findings_visible_near_the_top() {
    let project = project_with_a_finding();
    let (served, mut browser) = open_preview(&project, DESKTOP_SCREEN);
    let finding = browser.eval(&placed("#findings li[data-code=\"http-link\"]"));
    assert_eq!(finding["shown"], true, "{finding}");
    assert!(num(&finding["bottom"]) <= 400.0, "{finding}");
    assert!(
        browser
            .eval("document.querySelector('#findings li[data-code=\"http-link\"]').textContent")
            .as_str()
            .unwrap()
            .contains("issues/2022-07-13.toml:12: link `http://www.renecassin.org/briefings/human-rights-act/` is not https://"),
    );
    // Scrolled down to the text part, the count stays in sight and leads
    // back to them.
    browser.eval("document.getElementById('text').scrollIntoView(); scrollY > 900");
    let count = browser.eval(&placed("#count"));
    assert_eq!(count["shown"], true, "{count}");
    assert!(
        num(&count["top"]) >= 0.0 && num(&count["bottom"]) <= 100.0,
        "{count}"
    );
    assert_eq!(
        browser.eval("document.getElementById('count').textContent.trim()"),
        "1 warning"
    );
    assert_eq!(
        browser.eval("document.getElementById('count').getAttribute('href')"),
        "#findings"
    );
    browser.close();
    served.kill();
}

#[test]
fn preview_page_shows_the_text_part_below_the_frames() {
    let project = Project::example();
    let (served, mut browser) = open_preview(&project, DESKTOP_SCREEN);
    let text = browser.eval(&placed("#text"));
    assert_eq!(text["shown"], true, "{text}");
    let frames = browser.eval(&placed("#frames"));
    assert!(
        num(&text["top"]) >= num(&frames["bottom"]),
        "{text} {frames}"
    );
    let words = browser.eval("document.getElementById('text').textContent");
    let words = words.as_str().unwrap();
    assert!(words.contains("Dear Ruth"), "{words}");
    assert!(words.contains(SUBJECT), "{words}");
    browser.close();
    served.kill();
}

#[test]
fn preview_page_collapses_the_technical_headers_below() {
    let project = Project::example();
    let (served, mut browser) = open_preview(&project, DESKTOP_SCREEN);
    let technical = [
        "td[data-header=\"Message-ID\"]",
        "td[data-header=\"Content-Type\"]",
        "td[data-header=\"List-Unsubscribe\"]",
        "#size",
    ];
    assert_eq!(
        browser.eval("document.getElementById('message').open"),
        false
    );
    for selector in technical {
        let cell = browser.eval(&placed(selector));
        assert_eq!(cell["shown"], false, "{selector}: {cell}");
    }
    let summary = browser.eval(&placed("#message summary"));
    let text = browser.eval(&placed("#text"));
    assert_eq!(summary["shown"], true, "{summary}");
    assert!(
        num(&summary["top"]) >= num(&text["bottom"]),
        "{summary} {text}"
    );
    // Opened, it shows them: the boundary, the token in the link, the size.
    browser.eval("document.querySelector('#message summary').click()");
    for selector in technical {
        let cell = browser.eval(&placed(selector));
        assert_eq!(cell["shown"], true, "{selector}: {cell}");
    }
    assert!(
        browser
            .eval(&header("Content-Type"))
            .as_str()
            .unwrap()
            .contains("boundary=")
    );
    browser.close();
    served.kill();
}

/// Where the reader was: the headers they opened, and how far down.
#[test]
fn preview_page_keeps_open_headers_and_the_scroll_position_across_a_live_reload() {
    let project = Project::example();
    let (served, mut browser) = open_preview(&project, DESKTOP_SCREEN);
    browser.eval("document.querySelector('#message summary').click(); scrollTo(0, 2500); scrollY");
    project.edit(
        ISSUE,
        &format!("subject = \"{SUBJECT}\""),
        "subject = \"A new subject\"",
    );
    let limit = Duration::from_secs(15);
    browser.wait(&format!("{} === 'A new subject'", header("Subject")), limit);
    assert_eq!(
        browser.eval("document.getElementById('message').open"),
        true
    );
    browser.wait(
        "document.readyState === 'complete' && scrollY === 2500",
        limit,
    );
    browser.close();
    served.kill();
}

#[test]
fn preview_page_at_390_px_does_not_scroll_sideways() {
    let project = project_with_a_finding();
    let (served, mut browser) = open_preview(&project, PHONE_SCREEN);
    browser.call(json!({"op": "screenshot", "path": artifacts().join("preview-390x844.png"), "fullPage": false}));
    browser.call(json!({"op": "screenshot", "path": artifacts().join("preview-390x844-full.png"), "fullPage": true}));
    assert_eq!(
        browser.eval("document.documentElement.scrollWidth <= innerWidth"),
        true,
        "the page is {} px wide",
        browser.eval("document.documentElement.scrollWidth")
    );
    let row = browser.eval(&placed("#inbox"));
    assert!(
        num(&row["bottom"]) <= 200.0 && num(&row["right"]) <= 390.0,
        "{row}"
    );
    let phone = browser.eval(&placed("#phone"));
    assert!(
        num(&phone["left"]) >= 0.0 && num(&phone["right"]) <= 390.0,
        "{phone}"
    );
    browser.close();
    served.kill();
}

#[test]
fn preview_serve_listens_on_port_6397_unless_told_otherwise() {
    let project = Project::example();
    let help = project.run(&["preview", "--help"]);
    help.expect_code(0);
    assert!(help.stdout.contains("[default: 6397]"), "{}", help.stdout);
    assert!(
        help.stdout.contains("http://127.0.0.1:6397/"),
        "{}",
        help.stdout
    );
    assert!(!help.stdout.contains("[default: 8025]"), "{}", help.stdout);
}

#[test]
fn preview_inbox_row_shows_the_first_words_when_there_is_no_preheader() {
    let project = Project::example();
    project.edit(ISSUE, &format!("preheader = \"{PREHEADER}\"\n"), "");
    let served = Served::start(&project, ISSUE);
    let page = served.raw(
        format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            served.port
        )
        .as_bytes(),
    );
    assert!(
        page.contains(
            "<span class=\"preheader\" title=\"No preheader: a mail app shows the email's first words\">View this email in your browser: RENÉ CASSIN Rwanda, Refugees, and Our Rights under threat 13 July 2022 Dear Ruth On 22 June"
        ),
        "{page}"
    );
    served.kill();
}

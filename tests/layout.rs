//! `ARCHITECTURE.md`'s rule, as tests: data flows one way, so no module
//! imports a module to its left in the pipeline
//! (`cli → commands → model → render → check | preview | send → journal`).
//!
//! Each test reads every `.rs` file under `src/` and fails naming each file
//! and line that breaks its rule. A module is "mentioned" by a path that
//! starts at the crate root: `crate::render::…`, `crate::{render, …}`, or
//! `super::…` climbing up to the root. Comments (doc comments included)
//! and the insides of string and character literals do not count.
//!
//! Sideways uses between the stages after render (`send` uses `check` and
//! `preview`) are allowed: they are not upward.

use std::fs;
use std::path::{Path, PathBuf};

/// The modules that only `cli.rs`, `commands/` and `main.rs` may name.
const WIRING: &[&str] = &["cli", "commands"];
/// What the model is read by: none of it may be named in `src/model/`.
const AFTER_MODEL: &[&str] = &[
    "render",
    "check",
    "preview",
    "send",
    "journal",
    "web",
    "unsubscribe",
    "bounces",
    "status_column",
];
/// What does something with the rendered issue: not named in `src/render/`.
const AFTER_RENDER: &[&str] = &["check", "preview", "send", "web"];

#[test]
fn nothing_below_commands_names_commands_or_cli() {
    let allowed = |path: &str| {
        path == "src/cli.rs" || path == "src/main.rs" || path.starts_with("src/commands/")
    };
    let broken = uses_of(|path| !allowed(path), WIRING);
    assert_none(
        &broken,
        "only src/cli.rs, src/commands/ and src/main.rs may name the command line or the \
         commands (ARCHITECTURE.md: nothing below commands imports commands or cli); \
         have the command pass in what the code needs",
    );
}

#[test]
fn the_model_names_no_stage_after_it() {
    let broken = uses_of(|path| path.starts_with("src/model/"), AFTER_MODEL);
    assert_none(
        &broken,
        "src/model/ may not name a stage after it (ARCHITECTURE.md: data flows one way); \
         move the code to that stage, or have it pass in what the model needs",
    );
}

#[test]
fn render_names_nothing_that_uses_its_output() {
    let broken = uses_of(|path| path.starts_with("src/render/"), AFTER_RENDER);
    assert_none(
        &broken,
        "src/render/ may not name check, preview, send or web, which use what it renders \
         (ARCHITECTURE.md: data flows one way); move the code to that stage, or have it \
         pass in what render needs",
    );
}

#[test]
fn lib_rs_only_declares_the_modules() {
    let path = repo().join("src/lib.rs");
    let text = fs::read_to_string(&path).expect("src/lib.rs is readable");
    let broken: Vec<String> = code_only(&text)
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !is_module_declaration(line.trim()))
        .map(|(i, line)| format!("src/lib.rs:{}: `{}`", i + 1, line.trim()))
        .collect();
    assert_none(
        &broken,
        "src/lib.rs only declares the modules (`mod x;` or `pub mod x;`) and comments \
         (ARCHITECTURE.md); put the code in the module it belongs to",
    );
}

// ------------------------------------------------------------ the scanner

#[test]
fn a_path_in_a_comment_or_a_literal_is_not_a_use() {
    let text = r####"
// use crate::cli;
/// [`crate::commands::run`]
//! crate::cli
/* crate::cli /* nested */ crate::cli */
fn f<'a>(x: &'a str) -> &'a str {
    let _ = "crate::cli \" crate::cli";
    let _ = r#"crate::cli " crate::cli"#;
    let _ = ['"', '\'', '\\'];
    x
}
"####;
    assert_eq!(mentions(text, &[]), Vec::<(usize, String)>::new());
}

#[test]
fn grouped_and_super_paths_are_uses() {
    let text = "use crate::{\n    model::Config,\n    render::{self, html},\n};\n\
                fn f() { crate :: send::run(); }\n\
                use super::super::check;\nuse super::issue;\n";
    // As in src/model/subscribers/mod.rs: two `super`s reach the root.
    let module = ["model".to_string(), "subscribers".to_string()];
    assert_eq!(
        mentions(text, &module),
        [
            (2, "model".to_string()),
            (3, "render".to_string()),
            (5, "send".to_string()),
            (6, "check".to_string()),
        ]
    );
}

/// Each line where a file under `src/` that `applies` names a module of
/// `forbidden` at the crate root: `path:line: crate::name`.
fn uses_of(applies: impl Fn(&str) -> bool, forbidden: &[&str]) -> Vec<String> {
    let root = repo();
    let mut broken = Vec::new();
    for file in rust_files(&root.join("src")) {
        let path = file
            .strip_prefix(&root)
            .expect("under the repository")
            .to_string_lossy()
            .replace('\\', "/");
        if !applies(&path) {
            continue;
        }
        let text =
            fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read `{path}`: {e}"));
        for (line, name) in mentions(&text, &module_of(&path)) {
            if forbidden.contains(&name.as_str()) {
                broken.push(format!("{path}:{line}: names `crate::{name}`"));
            }
        }
    }
    broken
}

#[track_caller]
fn assert_none(broken: &[String], rule: &str) {
    assert!(broken.is_empty(), "{rule}:\n  {}", broken.join("\n  "));
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list `{}`: {e}", dir.display()))
        .map(|entry| entry.expect("a folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The module a file under `src/` holds: `src/model/subscribers/mod.rs`
/// and `src/model/subscribers.rs` are `model::subscribers`; `lib.rs` and
/// `main.rs` are the root.
fn module_of(path: &str) -> Vec<String> {
    let inside = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut module: Vec<String> = inside.split('/').map(str::to_string).collect();
    if matches!(
        module.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        module.pop();
    }
    module
}

fn is_module_declaration(line: &str) -> bool {
    let name = line
        .strip_prefix("pub mod ")
        .or_else(|| line.strip_prefix("mod "))
        .and_then(|rest| rest.strip_suffix(';'));
    name.is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// `text` with its comments and the insides of its string and character
/// literals blanked out, line ends kept, so that lines keep their numbers
/// and a path in a comment or a literal is not taken for a use.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let at = |k: usize| chars.get(i + k).copied().unwrap_or('\0');
        let after_word = i > 0 && is_word(chars[i - 1]);
        let end = if at(0) == '/' && at(1) == '/' {
            chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |n| i + n)
        } else if at(0) == '/' && at(1) == '*' {
            block_comment_end(&chars, i)
        } else if at(0) == '"' {
            string_end(&chars, i + 1)
        } else if !after_word && let Some(end) = raw_string_end(&chars, i) {
            end
        } else if at(0) == '\''
            && let Some(end) = char_literal_end(&chars, i)
        {
            end
        } else {
            out.push(at(0));
            i += 1;
            continue;
        };
        out.extend(chars[i..end].iter().copied().map(blank));
        i = end;
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Just past the `*/` that closes the (nested) block comment at `start`.
fn block_comment_end(chars: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i < chars.len() {
        match (chars[i], chars.get(i + 1).copied().unwrap_or('\0')) {
            ('/', '*') => (depth, i) = (depth + 1, i + 2),
            ('*', '/') => {
                (depth, i) = (depth - 1, i + 2);
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// Just past the `"` that closes a string whose contents start at `from`.
fn string_end(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// Just past a raw string (`r"…"`, `br#"…"#`) that starts at `start`.
fn raw_string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start;
    if chars.get(i) == Some(&'b') {
        i += 1;
    }
    if chars.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
    i += hashes;
    if chars.get(i) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let end = (i + 1..chars.len()).find(|&k| chars[k..].starts_with(&close));
    Some(end.map_or(chars.len(), |k| k + close.len()))
}

/// Just past a character literal at `start` (`'x'`, `'\n'`, `'\u{1F600}'`);
/// `None` for a lifetime (`'a`).
fn char_literal_end(chars: &[char], start: usize) -> Option<usize> {
    match chars.get(start + 1)? {
        '\\' => {
            let close = chars[start + 3..].iter().position(|&c| c == '\'')?;
            Some(start + 3 + close + 1)
        }
        _ if chars.get(start + 2) == Some(&'\'') => Some(start + 3),
        _ => None,
    }
}

/// Each module at the crate root that `text` names, with its line (1-based):
/// after `crate::`, in a `crate::{…}` group, or after enough `super::`s to
/// climb from `module` (the file's module) to the root.
fn mentions(text: &str, module: &[String]) -> Vec<(usize, String)> {
    let code = code_only(text);
    let tokens = tokens(&code);
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // A path's first segment: not after `::` (as in `a::crate`).
        let starts_path = i == 0 || tokens[i - 1].text != "::";
        let is = |k: usize, text: &str| tokens.get(k).is_some_and(|t| t.text == text);
        let after_root = match tokens[i].text.as_str() {
            "crate" if starts_path && is(i + 1, "::") => Some(i + 2),
            "super" if starts_path => {
                let mut k = i;
                while is(k, "super") && is(k + 1, "::") {
                    k += 2;
                }
                let climbed = (k - i) / 2;
                (climbed > 0 && climbed >= module.len()).then_some(k)
            }
            _ => None,
        };
        if let Some(at) = after_root {
            found.extend(root_names(&tokens, at));
        }
        i += 1;
    }
    found
}

/// The names at the root that a path continues with at `at`: one name, or
/// each first name of a `{…}` group's items.
fn root_names(tokens: &[Token], at: usize) -> Vec<(usize, String)> {
    let Some(first) = tokens.get(at) else {
        return Vec::new();
    };
    if first.text != "{" {
        return is_name(&first.text)
            .then(|| (first.line, first.text.clone()))
            .into_iter()
            .collect();
    }
    let mut names = Vec::new();
    let (mut depth, mut item_start) = (0, true);
    for token in &tokens[at + 1..] {
        match token.text.as_str() {
            "{" => depth += 1,
            "}" if depth == 0 => break,
            "}" => depth -= 1,
            "," if depth == 0 => item_start = true,
            name if item_start && depth == 0 => {
                item_start = false;
                if is_name(name) && name != "self" {
                    names.push((token.line, name.to_string()));
                }
            }
            _ => {}
        }
    }
    names
}

fn is_name(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// A word, `::`, or one other character of the code, with its line.
struct Token {
    text: String,
    line: usize,
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let len = if c == '\n' {
            line += 1;
            i += 1;
            continue;
        } else if c.is_whitespace() {
            i += 1;
            continue;
        } else if is_word(c) {
            chars[i..].iter().take_while(|&&c| is_word(c)).count()
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            2
        } else {
            1
        };
        tokens.push(Token {
            text: chars[i..i + len].iter().collect(),
            line,
        });
        i += len;
    }
    tokens
}

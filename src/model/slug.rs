//! Post ids from titles, by the archive's rule: lowercase ASCII, accents
//! transliterated, quotes and apostrophes dropped, every other run of
//! characters a single `-`.

/// "Britain’s First Female Jewish MP" → `britains-first-female-jewish-mp`.
pub fn slug(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut gap = false;
    for c in title.chars() {
        if is_quote(c) {
            continue;
        }
        let ascii = if c.is_ascii() {
            c.to_string()
        } else {
            deunicode::deunicode_char(c).unwrap_or("").to_string()
        };
        for a in ascii.chars() {
            if is_quote(a) {
                continue;
            }
            if a.is_ascii_alphanumeric() {
                if gap && !out.is_empty() {
                    out.push('-');
                }
                gap = false;
                out.push(a.to_ascii_lowercase());
            } else {
                gap = true;
            }
        }
    }
    out
}

fn is_quote(c: char) -> bool {
    matches!(
        c,
        '\'' | '"'
            | '`'
            | '‘'
            | '’'
            | '‚'
            | '‛'
            | '“'
            | '”'
            | '„'
            | '‟'
            | '′'
            | '″'
            | '«'
            | '»'
            | '‹'
            | '›'
    )
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn follows_the_archive_rule() {
        for (title, id) in [
            (
                "A Hidden Gem: Britain’s First Female Jewish MP",
                "a-hidden-gem-britains-first-female-jewish-mp",
            ),
            ("“Not a single safe space”", "not-a-single-safe-space"),
            ("‘Enemy Aliens’ – Really?", "enemy-aliens-really"),
            (
                "MARVEL(lous) Jewish Human Rights Heroes",
                "marvel-lous-jewish-human-rights-heroes",
            ),
            ("René Cassin’s statement", "rene-cassins-statement"),
            ("Straße & Œuvre…", "strasse-oeuvre"),
            ("!!!", ""),
        ] {
            assert_eq!(slug(title), id, "{title}");
        }
    }

    /// The example archive's ids were made from its titles by this rule.
    #[test]
    fn every_archived_title_gives_its_id() {
        let file: toml::Table = toml::from_str(include_str!("../../archive/posts.toml")).unwrap();
        let mut mismatches = Vec::new();
        for post in file["post"].as_array().unwrap() {
            let (id, title) = (
                post["id"].as_str().unwrap(),
                post["title"].as_str().unwrap(),
            );
            if slug(title) != id {
                mismatches.push(format!("{title:?}: {} != {id}", slug(title)));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }
}

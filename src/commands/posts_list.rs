//! `newsletter posts list [--search WORDS]`: the archived posts with the
//! issues that use them, or the ones matching a search, best first.
//!
//! Search rule: texts are compared as the slug rule writes ids (lowercase
//! ASCII, accents transliterated, quotes dropped), word by word. A post
//! matches when each word of the search begins a word of its title, author,
//! role, summary or id. Matches are ranked by, in turn: the search is the
//! post's id; more search words in the title; the search's words in a row
//! in the title; more search words in the author; ties keep the archive's
//! order (newest first).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::usage::{Usage, cell, in_issues};
use crate::cli::{ListFormat, PostsListArgs};
use crate::model::archive::{Archive, Post};
use crate::model::config::Config;
use crate::model::slug::slug;

pub fn run(config: &Config, args: &PostsListArgs) -> Result<ExitCode> {
    let archive = Archive::load(
        &config.paths.posts,
        &config.paths.events,
        &config.list.post_url,
    )?;
    let usage = Usage::scan(&config.paths.issues)?;
    let query = args.search.join(" ");
    let searching = !args.search.is_empty();
    let posts: Vec<&Post> = if searching {
        let search = Search::new(&query);
        if search.words.is_empty() {
            bail!("`--search {query}` has no word to look for; give words with letters or digits");
        }
        search.ranked(&archive.posts)
    } else {
        archive.posts.iter().collect()
    };

    let mut out = std::io::stdout().lock();
    if args.format == ListFormat::Tsv {
        writeln!(out, "id\ttitle\tauthor\tdate\tissues")?;
        for post in &posts {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}",
                post.id,
                cell(&post.title),
                cell(post.author.as_deref().unwrap_or("")),
                post.date.map(|d| d.to_string()).unwrap_or_default(),
                usage.of_post(&post.id).join(",")
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let shown = config.paths.posts.display();
    let total = archive.posts.len();
    if total == 0 {
        writeln!(
            out,
            "no posts in `{shown}` yet; add the blog's with `newsletter posts import FEED`"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if posts.is_empty() {
        writeln!(
            out,
            "no post matches `{query}`: each word must begin a word of a post's title, author, summary or id (case and accents do not matter), and {total} {} searched.",
            plural(total, "post was", "posts were")
        )?;
        writeln!(
            out,
            "Try fewer or shorter words (`refug` finds refugee and refugees), or list every post with `newsletter posts list`."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for post in &posts {
        writeln!(out, "{}", post.id)?;
        writeln!(out, "  {}", cell(&post.title))?;
        let mut about: Vec<String> = Vec::new();
        about.extend(post.author.as_deref().map(cell));
        about.extend(post.date.map(|d| d.to_string()));
        about.push(in_issues(usage.of_post(&post.id)));
        writeln!(out, "  {}", about.join(" · "))?;
    }
    if searching {
        writeln!(
            out,
            "{} of {total} posts {} `{query}`, best match first",
            posts.len(),
            plural(posts.len(), "matches", "match")
        )?;
    } else {
        writeln!(
            out,
            "{total} {} in `{shown}`, newest first; search them with `newsletter posts list --search WORDS`",
            plural(total, "post", "posts")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A search, as the words it looks for.
struct Search {
    /// The search as an id would write it.
    id: String,
    words: Vec<String>,
}

/// How well a post matches; greater is better (the fields compare in order).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    is_id: bool,
    title_words: usize,
    title_phrase: bool,
    author_words: usize,
}

impl Search {
    fn new(query: &str) -> Search {
        let id = slug(query);
        let words = words(&id);
        Search { id, words }
    }

    /// The matching posts, best first; ties in archive order.
    fn ranked<'a>(&self, posts: &'a [Post]) -> Vec<&'a Post> {
        let mut scored: Vec<(Score, &Post)> = posts
            .iter()
            .filter_map(|post| self.score(post).map(|score| (score, post)))
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0));
        scored.into_iter().map(|(_, post)| post).collect()
    }

    /// `None` unless every word is found somewhere.
    fn score(&self, post: &Post) -> Option<Score> {
        let title_words = words(&slug(&post.title));
        let author_words = words(&slug(post.author.as_deref().unwrap_or("")));
        let mut other = words(&slug(post.summary.as_deref().unwrap_or("")));
        other.extend(words(&slug(post.role.as_deref().unwrap_or(""))));
        other.extend(words(&post.id));
        let has = |field: &[String], word: &str| field.iter().any(|w| w.starts_with(word));
        let mut score = Score {
            is_id: post.id == self.id,
            title_words: 0,
            title_phrase: !self.words.is_empty()
                && title_words.windows(self.words.len()).any(|run| {
                    run.iter()
                        .zip(&self.words)
                        .all(|(w, q)| w.starts_with(q.as_str()))
                }),
            author_words: 0,
        };
        for word in &self.words {
            let in_title = has(&title_words, word);
            let in_author = has(&author_words, word);
            if !(in_title || in_author || has(&other, word)) {
                return None;
            }
            score.title_words += usize::from(in_title);
            score.author_words += usize::from(in_author);
        }
        Some(score)
    }
}

/// The words of a slug.
fn words(slug: &str) -> Vec<String> {
    slug.split('-')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: &str, title: &str, author: Option<&str>, summary: &str) -> Post {
        Post {
            id: id.into(),
            title: title.into(),
            author: author.map(Into::into),
            role: None,
            summary: Some(summary.into()),
            url: String::new(),
            date: None,
            image: None,
        }
    }

    fn ids(query: &str, posts: &[Post]) -> Vec<String> {
        Search::new(query)
            .ranked(posts)
            .into_iter()
            .map(|p| p.id.clone())
            .collect()
    }

    #[test]
    fn every_word_must_be_found_and_titles_rank_first() {
        let posts = [
            post("a", "Food rights", None, "a human rights act briefing"),
            post("b", "Rights of humans", None, "why the act matters"),
            post("c", "Hands off our Human Rights Act", None, ""),
            post("d", "Human rights", Some("Act Person"), ""),
            post("e", "Human", None, "nothing more"),
        ];
        assert_eq!(ids("human rights act", &posts), ["c", "d", "b", "a"]);
    }

    #[test]
    fn case_accents_and_quotes_do_not_matter() {
        let posts = [
            post("x", "Le Réseau d’Entraide", None, ""),
            post("y", "Britain’s first", None, ""),
        ];
        assert_eq!(ids("RESEAU", &posts), ["x"]);
        assert_eq!(ids("réseau dentraide", &posts), ["x"]);
        assert_eq!(ids("britains", &posts), ["y"]);
        assert_eq!(ids("brit", &posts), ["y"]);
    }

    #[test]
    fn an_id_searched_for_comes_first() {
        let posts = [
            post("rights-day", "Rights day rights", None, ""),
            post("day", "Day", None, "rights"),
        ];
        assert_eq!(ids("day", &posts), ["day", "rights-day"]);
    }
}

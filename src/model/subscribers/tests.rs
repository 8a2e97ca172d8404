//! Unit tests of reading and surveying subscriber files.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use super::address::{clean_value, shorten};
use super::decode::{Scan, scan, windows_1252};
use super::dialect::Sniffer;
use super::survey::{SURVEY_CHUNK, survey_in_chunks};
use super::*;

fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

fn read_all(bytes: &[u8]) -> (SubscriberReader, Vec<Result<Subscriber, RowProblem>>) {
    let f = file(bytes);
    let reader = SubscriberReader::open(f.path()).unwrap();
    let columns = reader.columns().clone();
    let warnings = reader.warnings().to_vec();
    let rows: Vec<_> = reader.collect();
    // Reopen for the metadata (the first reader was consumed).
    let reader = SubscriberReader::open(f.path()).unwrap();
    assert_eq!(reader.columns(), &columns);
    assert_eq!(reader.warnings(), warnings.as_slice());
    (reader, rows)
}

fn ok(rows: &[Result<Subscriber, RowProblem>]) -> Vec<&Subscriber> {
    rows.iter().filter_map(|r| r.as_ref().ok()).collect()
}

fn open_error(bytes: &[u8]) -> String {
    let f = file(bytes);
    let err = SubscriberReader::open(f.path()).unwrap_err();
    format!("{err:#}")
}

#[test]
fn plain_file() {
    let (reader, rows) = read_all(
        b"email,first_name,last_name,status\nann@example.org,Ann,Lee,subscribed\n\
          bob@example.org,Bob,,Unsubscribed\n",
    );
    assert_eq!(reader.delimiter(), b',');
    assert!(!reader.has_bom());
    assert!(reader.warnings().is_empty());
    let subs = ok(&rows);
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].line, 2);
    assert_eq!(subs[0].display_name(), "Ann Lee");
    assert_eq!(subs[0].status, SubscriptionStatus::Subscribed);
    assert_eq!(subs[1].display_name(), "Bob");
    assert_eq!(subs[1].status, SubscriptionStatus::Unsubscribed);
    assert_eq!(subs[1].line, 3);
}

#[test]
fn bom_is_stripped() {
    let (reader, rows) = read_all(b"\xEF\xBB\xBFEmail,First Name\nann@example.org,Ann\n");
    assert!(reader.has_bom());
    assert_eq!(reader.columns().names(), ["email", "first_name"]);
    assert_eq!(ok(&rows)[0].first_name, "Ann");
    assert!(reader.warnings().is_empty());
}

#[test]
fn semicolon_and_tab_delimiters() {
    let (reader, rows) = read_all(b"\"E-mail\";\"Vorname, Name\"\nann@example.org;\"Ann, A.\"\n");
    assert_eq!(reader.delimiter(), b';');
    assert_eq!(reader.columns().names(), ["email", "vorname,_name"]);
    assert_eq!(ok(&rows)[0].extra, ["Ann, A."]);

    let (reader, rows) = read_all(b"Email Address\tLast-Name\nann@example.org\tLee\n");
    assert_eq!(reader.delimiter(), b'\t');
    assert_eq!(ok(&rows)[0].last_name, "Lee");
}

#[test]
fn crlf_and_blank_lines() {
    let (_, rows) = read_all(
        b"email,first_name\r\n\r\nann@example.org,Ann\r\n,\r\n  ,  \r\nbob@example.org,Bob\r\n",
    );
    let subs = ok(&rows);
    assert_eq!(rows.len(), 2);
    assert_eq!((subs[0].line, subs[0].first_name.as_str()), (3, "Ann"));
    assert_eq!((subs[1].line, subs[1].first_name.as_str()), (6, "Bob"));
}

#[test]
fn line_numbers_in_many_layouts() {
    let lines = |bytes: &[u8]| -> Vec<u64> {
        let (_, rows) = read_all(bytes);
        rows.iter()
            .map(|r| match r {
                Ok(s) => s.line,
                Err(p) => p.line(),
            })
            .collect()
    };
    let body = "email,first_name\n\na@example.org,A\n\n\nb@example.org,\"B\n\nB\"\nc@example.org,C";
    assert_eq!(lines(body.as_bytes()), [3, 6, 9]);
    assert_eq!(lines(format!("{body}\n").as_bytes()), [3, 6, 9]);
    assert_eq!(lines(format!("{body}\n\n\n").as_bytes()), [3, 6, 9]);
    let crlf = body.replace('\n', "\r\n");
    assert_eq!(lines(crlf.as_bytes()), [3, 6, 9]);
    assert_eq!(lines(format!("{crlf}\r\n").as_bytes()), [3, 6, 9]);
    // Old Mac files end lines with CR alone.
    let cr = body.replace('\n', "\r");
    assert_eq!(lines(cr.as_bytes()), [3, 6, 9]);
    assert_eq!(lines(b"\n\nemail\n\na@example.org"), [5]);
    assert_eq!(lines(b"email\nbad\nbad\n"), [2, 3]);
    // A quote left open at the end of the file.
    assert_eq!(lines(b"email,n\na@example.org,\"x\n"), [2]);
}

#[test]
fn quoted_newline_keeps_physical_line_numbers() {
    let (_, rows) = read_all(
        b"email,first_name,address\nann@example.org,\"Ann\nMarie\",\"1 Main St\r\nTown\"\n\
          bob@@example.org,Bob,x\n",
    );
    let ann = rows[0].as_ref().unwrap();
    assert_eq!(ann.line, 2);
    assert_eq!(ann.first_name, "Ann Marie");
    assert_eq!(ann.extra, ["1 Main St Town"]);
    assert_eq!(rows[1].as_ref().unwrap_err().line(), 5);
}

#[test]
fn windows_1252_is_decoded_with_a_warning() {
    let (reader, rows) =
        read_all(b"email;first_name;last_name\nzoe@example.org;Zo\xeb;\x93Smith\x94 \x80\n");
    assert_eq!(reader.delimiter(), b';');
    assert_eq!(reader.warnings().len(), 1);
    assert!(reader.warnings()[0].contains("is not UTF-8; read it as Windows-1252"));
    let zoe = ok(&rows)[0];
    assert_eq!(zoe.first_name, "Zoë");
    assert_eq!(zoe.last_name, "\u{201C}Smith\u{201D} €");
}

#[test]
fn cp1252_reader_with_tiny_buffers() {
    let input: Vec<u8> = (0x20..=0xFF)
        .filter(|b| ![0x81, 0x8D, 0x8F, 0x90, 0x9D].contains(b))
        .collect();
    let (expected, _, _) = encoding_rs::WINDOWS_1252.decode(&input);
    for size in 1..8 {
        let mut reader = windows_1252(input.as_slice());
        let mut out = Vec::new();
        let mut buf = vec![0u8; size];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8(out).unwrap(), expected, "buffer {size}");
    }
    let decoded = |byte: u8| {
        let mut out = String::new();
        windows_1252([byte].as_slice())
            .read_to_string(&mut out)
            .unwrap();
        out
    };
    assert_eq!(decoded(0x9F), "Ÿ");
    assert_eq!(decoded(0xE9), "é");
    assert_eq!(decoded(0x80), "€");
}

/// Hands out at most `chunk` bytes per read.
struct Chunked<'a> {
    bytes: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fn scan_in_chunks(bytes: &[u8], chunk: usize) -> Scan {
    scan(&mut Chunked { bytes, chunk }).unwrap()
}

#[test]
fn utf8_split_across_buffers() {
    // A 3-byte character across the boundary of the scan buffer.
    let mut bytes = b"email,first_name\na@example.org,".to_vec();
    bytes.resize(SCAN_BUFFER - 1, b'x');
    bytes.extend_from_slice("€\n".as_bytes());
    assert_eq!(&bytes[SCAN_BUFFER - 1..SCAN_BUFFER + 2], "€".as_bytes());
    for chunk in [1, 2, 5, SCAN_BUFFER] {
        let found = scan_in_chunks(&bytes, chunk);
        assert_eq!(found.first_invalid_line, None, "chunk {chunk}");
    }
    let (reader, rows) = read_all(&bytes);
    assert!(reader.warnings().is_empty());
    assert_eq!(ok(&rows).len(), 1);

    let bad = b"email\n\xE2\x82\xAC\n\xC3\xA9\xE2\x82";
    for chunk in [1, 2, 5, SCAN_BUFFER] {
        let found = scan_in_chunks(bad, chunk);
        assert_eq!(found.first_invalid_line, Some(3), "chunk {chunk}");
        assert!(!found.cp1252_undefined);
    }
    let found = scan_in_chunks(b"a\n\xE9\n\x9D", 1);
    assert_eq!(found.first_invalid_line, Some(2));
    assert!(found.cp1252_undefined);
}

#[test]
fn invalid_utf8_that_is_not_cp1252_is_an_error() {
    let message = open_error(b"email,first_name\nann@example.org,Ann\nbob@example.org,B\x81b\n");
    assert!(message.contains("line 3 is not valid UTF-8"), "{message}");
    assert!(message.contains("CSV UTF-8"), "{message}");

    // cp1252 text after a UTF-8 byte order mark is a mix: refuse it too.
    let message = open_error(b"\xEF\xBB\xBFemail\nzo\xeb@example.org\n");
    assert!(message.contains("line 2 is not valid UTF-8"), "{message}");
}

#[test]
fn utf16_is_an_error() {
    let message = open_error(b"\xFF\xFEe\0m\0a\0i\0l\0");
    assert!(message.contains("UTF-16"), "{message}");
    assert!(message.contains("CSV UTF-8"), "{message}");
}

#[test]
fn missing_email_column() {
    let message = open_error(b"Name,Mail\nAnn,ann@example.org\n");
    assert!(message.contains("has no `email` column"), "{message}");
    assert!(message.contains("`Name`, `Mail`"), "{message}");
    assert!(message.contains("Rename the column"), "{message}");

    let message = open_error(b"ann@example.org,Ann\n");
    assert!(message.contains("looks like data"), "{message}");
}

#[test]
fn duplicate_column_names() {
    let message = open_error(b"Email,E-mail\na@example.org,b@example.org\n");
    assert!(
        message.contains("two `email` columns (`Email` and `E-mail`)"),
        "{message}"
    );
}

#[test]
fn blank_rows_above_the_header_are_skipped() {
    let (reader, rows) = read_all(b";;;\r\n\r\n;;\r\nEmail;Name\r\n;\r\na@example.org;Ann\r\n");
    assert_eq!(reader.delimiter(), b';');
    assert_eq!(reader.columns().names(), ["email", "name"]);
    assert_eq!(ok(&rows)[0].line, 6);
    assert_eq!(ok(&rows)[0].extra, ["Ann"]);
}

#[test]
fn header_only_has_no_rows() {
    let (_, rows) = read_all(b"email,first_name\n");
    assert!(rows.is_empty());
    let (_, rows) = read_all(b"email");
    assert!(rows.is_empty());
}

#[test]
fn empty_file_is_an_error() {
    for bytes in [&b""[..], b"\xEF\xBB\xBF", b"\r\n\n"] {
        let message = open_error(bytes);
        assert!(
            message.contains("is empty: it needs a header line with an `email` column"),
            "{message}"
        );
    }
}

#[test]
fn missing_file_is_an_error() {
    let err = SubscriberReader::open(Path::new("/nonexistent/list.csv")).unwrap_err();
    assert!(format!("{err:#}").contains("cannot open `/nonexistent/list.csv`"));
}

#[test]
fn invalid_addresses() {
    let (_, rows) = read_all(
        "email,first_name\n\
          bob.example.org,no at\n\
          bob@@example.org,two at\n\
          bob smith@example.org,space\n\
          Bob <bob@example.org>,display name\n\
          bob@example.org.,trailing dot\n\
          ,empty\n\
          bob@example,no dot\n\
          @example.org,no user\n\
          bob@,no domain\n\
          \"bob@exa\nmple.org\",line break\n\
          bob\u{a0}@example.org,nbsp\n\
          bob..x@example.org,double dot user\n\
          bob@-example.org,hyphen\n\
          <bob@example.org,lone bracket\n\
          bob@exam!ple.org,bang\n\
          bob@gmail.com',quote\n\
          \"bob\u{200B}@gmail.com\",zero width\n\
          bob@localhost,ok\n"
            .as_bytes(),
    );
    let problems: Vec<(u64, String)> = rows
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|p| (p.line(), p.to_string()))
        .collect();
    let expect = [
        (2, "invalid address `bob.example.org`: it has no `@`"),
        (
            3,
            "invalid address `bob@@example.org`: it has more than one `@`",
        ),
        (4, "`bob smith@example.org`: it contains a space"),
        (5, "keep only the address `bob@example.org`"),
        (6, "the domain `example.org.` ends with a dot"),
        (7, "invalid address ``: the `email` cell is empty"),
        (8, "the domain `example` has no dot"),
        (9, "nothing comes before the `@`"),
        (10, "nothing comes after the `@`"),
        (11, "line break"),
        (13, "space (maybe an invisible one)"),
        (14, "the part before the `@` (`bob..x`) is not valid"),
        (15, "the domain `-example.org` is not valid"),
        (16, "it contains `<` or `>`"),
        (
            17,
            "the domain `exam!ple.org` contains `!`, which no domain name has",
        ),
        (18, "contains `'`"),
        (19, "invisible character"),
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    for ((line, text), (want_line, want)) in problems.iter().zip(expect) {
        assert_eq!(*line, want_line, "{text}");
        assert!(text.starts_with(&format!("line {want_line}: ")), "{text}");
        assert!(text.contains(want), "{text} should contain {want}");
    }
    assert_eq!(
        problems[9].1,
        "line 11: invalid address `bob@exa\\nmple.org`: it contains a line break or another invisible character; retype it"
    );
    let subs = ok(&rows);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].email, "bob@localhost");
    assert_eq!(subs[0].line, 20);
}

#[test]
fn addresses_are_trimmed_and_keyed() {
    let (_, rows) = read_all(b"email\n  Ann.Lee@Example.ORG  \n");
    let ann = ok(&rows)[0];
    assert_eq!(ann.email, "Ann.Lee@Example.ORG");
    assert_eq!(ann.key, "ann.lee@example.org");
}

#[test]
fn idn_domain_is_valid() {
    let (_, rows) = read_all("email\nuser@bücher.example\nÜser@BÜCHER.example\n".as_bytes());
    let subs = ok(&rows);
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].email, "user@bücher.example");
    assert_eq!(subs[1].key, "üser@bücher.example");
}

#[test]
fn duplicates() {
    let (_, rows) = read_all(
        b"email\nann@example.org\nann+news@example.org\nANN@Example.org\nann+news@example.org\n",
    );
    let mut filter = DuplicateFilter::new();
    let found: Vec<Option<u64>> = ok(&rows).iter().map(|s| filter.check(s)).collect();
    assert_eq!(found, [None, None, Some(2), Some(3)]);
}

#[test]
fn a_row_with_more_or_fewer_fields_than_the_header_is_malformed() {
    let (_, rows) = read_all(
        b"email,first_name,last_name,status\na@example.org,Ann,Lee,,unsubscribed\nb@example.org,Bob\nc@example.org,Cy,Roe,\n",
    );
    let lines: Vec<String> = rows
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|p| p.to_string())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("line 2: cannot read this row: it has 5 fields but the header has 4"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("line 3: cannot read this row: it has 2 fields"),
        "{}",
        lines[1]
    );
    assert_eq!(ok(&rows).len(), 1);
}

#[test]
fn an_opt_out_column_keeps_a_row_from_being_mailed() {
    let (reader, rows) = read_all(
        b"email,Unsubscribed,Email Opt Out\na@example.org,yes,\nb@example.org,no,false\nc@example.org,,TRUE\nd@example.org,maybe,\n",
    );
    assert_eq!(
        reader.columns().opt_outs().collect::<Vec<_>>(),
        ["Unsubscribed", "Email Opt Out"]
    );
    let subs = ok(&rows);
    let statuses: Vec<(&str, SubscriptionStatus, Option<usize>)> = subs
        .iter()
        .map(|s| (s.email.as_str(), s.status, s.opted_out_by))
        .collect();
    assert_eq!(
        statuses,
        [
            ("a@example.org", SubscriptionStatus::Unsubscribed, Some(0)),
            ("b@example.org", SubscriptionStatus::Subscribed, None),
            ("c@example.org", SubscriptionStatus::Unsubscribed, Some(1)),
        ]
    );
    let problem = rows
        .iter()
        .find_map(|r| r.as_ref().err())
        .unwrap()
        .to_string();
    assert!(
        problem.starts_with("line 5: `Unsubscribed` is `maybe`, which says neither yes nor no"),
        "{problem}"
    );
}

#[test]
fn a_consent_column_says_no_means_not_mailed() {
    let (_, rows) = read_all(b"email,consent\na@example.org,no\nb@example.org,yes\n");
    let subs = ok(&rows);
    assert_eq!(subs[0].status, SubscriptionStatus::Unsubscribed);
    assert_eq!(subs[1].status, SubscriptionStatus::Subscribed);
}

#[test]
fn names_lose_control_characters() {
    let (_, rows) = read_all(
        "email,first_name,last_name,note\n\
         ann@example.org,\"Ann\r\nBcc: evil@example.org\",\"\tLee\u{0085}\u{2028}X \u{0007}\",\"a\u{202E}b\u{2029}c\"\n"
            .as_bytes(),
    );
    let ann = ok(&rows)[0];
    assert_eq!(ann.first_name, "Ann Bcc: evil@example.org");
    assert_eq!(ann.last_name, "Lee X");
    // Cc and U+2028/2029 become spaces; bidi overrides go.
    assert_eq!(ann.extra, ["ab c"]);
}

#[test]
fn long_values_are_truncated() {
    assert_eq!(
        clean_value(&"é".repeat(300), MAX_NAME_CHARS)
            .chars()
            .count(),
        256
    );
    assert_eq!(clean_value(&"x".repeat(2000), MAX_EXTRA_CHARS).len(), 1024);
    assert_eq!(clean_value("  \n a b \u{1} ", 10), "a b");
}

#[test]
fn unknown_status() {
    let (_, rows) = read_all(
        b"email,status\na@example.org,Active\nb@example.org, BOUNCED \nc@example.org,\nd@example.org,complained\ne@example.org,unsubscribed\n",
    );
    let p = rows[0].as_ref().unwrap_err();
    assert_eq!(
        p,
        &RowProblem::UnknownStatus {
            line: 2,
            value: "Active".into()
        }
    );
    assert!(
        p.to_string()
            .starts_with("line 2: unknown status `Active`: use")
    );
    let statuses: Vec<SubscriptionStatus> = ok(&rows).iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            SubscriptionStatus::Bounced,
            SubscriptionStatus::Subscribed,
            SubscriptionStatus::Complained,
            SubscriptionStatus::Unsubscribed
        ]
    );
}

#[test]
fn missing_status_column_means_subscribed() {
    let (reader, rows) = read_all(b"email\na@example.org\n");
    assert!(!reader.columns().has("status"));
    assert_eq!(ok(&rows)[0].status, SubscriptionStatus::Subscribed);
}

#[test]
fn extra_columns_and_field() {
    let (reader, rows) = read_all(
        b"Email,First Name,Member Since,City\na@example.org,Ann,2020,\nb@example.org,Bob,2021,Oslo\n",
    );
    let columns = reader.columns();
    assert_eq!(
        columns.names(),
        ["email", "first_name", "member_since", "city"]
    );
    assert_eq!(columns.extra(), ["member_since", "city"]);
    assert_eq!(reader.extra_columns(), columns.extra());
    assert!(columns.has("member_since") && columns.has("Member Since"));
    assert!(!columns.has("last_name"));
    let subs = ok(&rows);
    assert_eq!(subs[0].field(columns, "member_since"), Some("2020"));
    assert_eq!(subs[0].field(columns, "city"), Some(""));
    assert_eq!(subs[1].field(columns, "City"), Some("Oslo"));
    assert_eq!(subs[1].field(columns, "email"), Some("b@example.org"));
    assert_eq!(subs[1].field(columns, "first_name"), Some("Bob"));
    assert_eq!(subs[1].field(columns, "last_name"), Some(""));
    assert_eq!(subs[1].field(columns, "status"), Some("subscribed"));
    assert_eq!(subs[1].field(columns, "nope"), None);
}

#[test]
fn huge_field_does_not_panic() {
    let mut bytes = b"email,first_name,note\n".to_vec();
    let big = "é".repeat(512 * 1024); // 1 MiB
    bytes.extend_from_slice(format!("a@example.org,{big},{big}\n").as_bytes());
    bytes.extend_from_slice(format!("{big}@example.org,x\n").as_bytes());
    bytes.extend_from_slice(format!("\"{big}\n{big}\",x\n").as_bytes());
    let (_, rows) = read_all(&bytes);
    let a = rows[0].as_ref().unwrap();
    assert_eq!(a.first_name.chars().count(), MAX_NAME_CHARS);
    assert_eq!(a.extra[0].chars().count(), MAX_EXTRA_CHARS);
    let p = rows[1].as_ref().unwrap_err();
    assert_eq!(p.line(), 3);
    assert!(p.to_string().chars().count() < 400);
    assert_eq!(rows[2].as_ref().unwrap_err().line(), 4);
}

#[test]
fn stray_quote_is_reported() {
    let mut bytes = b"email,first_name\na@example.org,\"Ann\n".to_vec();
    for i in 0..200 {
        bytes.extend_from_slice(format!("u{i}@example.org,x\n").as_bytes());
    }
    let (_, rows) = read_all(&bytes);
    assert_eq!(rows.len(), 1);
    let p = rows[0].as_ref().unwrap_err();
    assert!(matches!(p, RowProblem::Malformed { line: 2, .. }), "{p:?}");
    assert!(p.to_string().contains("check the quotes"), "{p}");
}

#[test]
fn survey_counts() {
    let f = file(
        b"email,status\n\
          a@example.org,\n\
          A@example.org,subscribed\n\
          b@example.org,unsubscribed\n\
          b@example.org,unsubscribed\n\
          c@example.org,bounced\n\
          d@example.org,complained\n\
          nope,\n\
          e@example.org,weird\n\
          f+x@example.org,subscribed\n\
          \"broken\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
    );
    let s = survey(f.path()).unwrap();
    assert_eq!(s.rows, 10);
    assert_eq!(
        (s.subscribed, s.unsubscribed, s.bounced, s.complained),
        (2, 2, 1, 1)
    );
    assert_eq!(
        (
            s.duplicates,
            s.invalid,
            s.unknown_status,
            s.malformed,
            s.conflicts
        ),
        (1, 1, 1, 1, 0)
    );
    let lines: Vec<u64> = s.problems.iter().map(RowProblem::line).collect();
    assert_eq!(lines, [3, 8, 9, 11]);
    assert_eq!(
        s.problems[0].to_string(),
        "line 3: `A@example.org` is already on line 2; this row is skipped"
    );
    assert_eq!(s.columns.names(), ["email", "status"]);
}

#[test]
fn survey_finds_status_conflicts() {
    let f = file(
        b"email,status\n\
          a@example.org,unsubscribed\n\
          A@example.org,subscribed\n\
          b@example.org,subscribed\n\
          B@Example.org,bounced\n\
          c@example.org,complained\n\
          c@example.org,unsubscribed\n",
    );
    let s = survey(f.path()).unwrap();
    assert_eq!(
        (s.rows, s.subscribed, s.conflicts, s.duplicates),
        (6, 2, 2, 0)
    );
    let shown: Vec<String> = s.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "line 3: `A@example.org` is subscribed on line 3 but unsubscribed on line 2, \
             so it would still be mailed; delete the subscribed row or set its status to \
             `unsubscribed`",
            "line 5: `B@Example.org` is subscribed on line 4 but bounced on line 5, \
             so it would still be mailed; delete the subscribed row or set its status to \
             `bounced`",
        ]
    );
}

#[test]
fn helpers_for_test_sends() {
    let columns = Columns::minimal();
    assert_eq!(columns.names(), ["email"]);
    let s = Subscriber::test(" Staff@Example.org ", 1);
    assert_eq!(
        (s.email.as_str(), s.key.as_str()),
        ("Staff@Example.org", "staff@example.org")
    );
    assert_eq!(s.field(&columns, "first_name"), Some(""));
    assert_eq!(s.field(&columns, "city"), None);
    assert_eq!(s.display_name(), "");
}

#[test]
fn survey_caps_problems() {
    let mut bytes = b"email\n".to_vec();
    for _ in 0..1500 {
        bytes.extend_from_slice(b"bad\n");
    }
    let f = file(&bytes);
    let s = survey(f.path()).unwrap();
    assert_eq!(s.invalid, 1500);
    assert_eq!(s.problems.len(), MAX_PROBLEMS);
    assert_eq!(s.problems[999].line(), 1001);
}

/// The single pass with in-memory sets that `survey` replaced: the reference for
/// the counts and the problems.
fn survey_in_memory(path: &Path) -> Survey {
    let reader = SubscriberReader::open(path).unwrap();
    let mut survey = survey_in_chunks(path, 1 << 20).unwrap();
    survey.problems.clear();
    let counts = (survey.rows, survey.unsubscribed, survey.bounced);
    (survey.subscribed, survey.duplicates, survey.conflicts) = (0, 0, 0);
    (survey.invalid, survey.unknown_status, survey.malformed) = (0, 0, 0);
    (
        survey.rows,
        survey.unsubscribed,
        survey.bounced,
        survey.complained,
    ) = (0, 0, 0, 0);
    let mut mailed = DuplicateFilter::new();
    let mut not_mailed: HashMap<String, (u64, SubscriptionStatus)> = HashMap::new();
    for item in reader {
        survey.rows += 1;
        let s = match item {
            Ok(s) => s,
            Err(problem) => {
                survey.problem(problem);
                continue;
            }
        };
        let conflict = |subscribed_line, status, status_line| RowProblem::StatusConflict {
            line: s.line,
            email: shorten(&s.email),
            subscribed_line,
            status,
            status_line,
        };
        if s.status == SubscriptionStatus::Subscribed {
            if let Some(first_line) = mailed.check(&s) {
                survey.problem(RowProblem::Duplicate {
                    line: s.line,
                    email: shorten(&s.email),
                    first_line,
                });
                continue;
            }
            *survey.bucket(SubscriptionStatus::Subscribed) += 1;
            if let Some(&(status_line, status)) = not_mailed.get(&s.key) {
                survey.problem(conflict(s.line, status, status_line));
            }
        } else {
            *survey.bucket(s.status) += 1;
            not_mailed
                .entry(s.key.clone())
                .or_insert((s.line, s.status));
            if let Some(&first) = mailed.seen.get(&KeyHash::of(&s.key)) {
                survey.problem(conflict(first, s.status, s.line));
            }
        }
    }
    assert_eq!(counts, (survey.rows, survey.unsubscribed, survey.bounced));
    survey
}

fn assert_same(a: &Survey, b: &Survey, what: &str) {
    let counts = |s: &Survey| {
        [
            s.rows,
            s.subscribed,
            s.unsubscribed,
            s.bounced,
            s.complained,
            s.duplicates,
            s.invalid,
            s.unknown_status,
            s.malformed,
            s.conflicts,
        ]
    };
    assert_eq!(counts(a), counts(b), "{what}");
    assert_eq!(a.problems, b.problems, "{what}");
}

/// A list with repeats far apart, case variants, all statuses and bad rows.
fn messy_list(rows: u64, distinct: u64) -> Vec<u8> {
    let mut bytes = b"email,status\n".to_vec();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = state % distinct;
        let email = match state >> 60 {
            0 => format!("User{n}@Example.ORG"),
            1 => format!("bad{n}"),
            _ => format!("user{n}@example.org"),
        };
        let status = match (state >> 56) & 15 {
            0 => "unsubscribed",
            1 => "bounced",
            2 => "complained",
            3 => "weird",
            _ => "",
        };
        bytes.extend_from_slice(format!("{email},{status}\n").as_bytes());
    }
    bytes
}

#[test]
fn survey_matches_a_single_pass_whatever_the_chunk() {
    for (rows, distinct) in [(50, 10), (3000, 700), (3000, 2900)] {
        let f = file(&messy_list(rows, distinct));
        let reference = survey_in_memory(f.path());
        assert!(reference.duplicates > 0 && reference.conflicts > 0);
        for chunk in [1, 2, 7, 64, 1000, SURVEY_CHUNK] {
            let s = survey_in_chunks(f.path(), chunk).unwrap();
            assert_same(&s, &reference, &format!("{rows} rows, chunk {chunk}"));
            assert_eq!(s.duplicates_index.count(), s.duplicates);
        }
    }
}

#[test]
fn duplicates_across_spill_boundaries() {
    // With 2 rows a chunk, every pair of rows below lands in a different run.
    let f = file(
        b"email,status\n\
          a@example.org,\n\
          b@example.org,\n\
          c@example.org,\n\
          d@example.org,\n\
          e@example.org,\n\
          B@EXAMPLE.ORG,\n\
          a@example.org,\n\
          x@example.org,\n\
          A@example.org,subscribed\n\
          e@example.org,\n",
    );
    let s = survey_in_chunks(f.path(), 2).unwrap();
    assert_eq!((s.rows, s.subscribed, s.duplicates), (10, 6, 4));
    let found: Vec<(u64, String, u64)> = s
        .problems
        .iter()
        .map(|p| match p {
            RowProblem::Duplicate {
                line,
                email,
                first_line,
            } => (*line, email.clone(), *first_line),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        found,
        [
            (7, "B@EXAMPLE.ORG".into(), 3),
            (8, "a@example.org".into(), 2),
            (10, "A@example.org".into(), 2),
            (11, "e@example.org".into(), 6),
        ]
    );

    // The index answers for the same rows when the file is streamed again.
    let reader = SubscriberReader::open(f.path()).unwrap();
    let earlier: Vec<Option<u64>> = reader
        .flatten()
        .map(|row| s.duplicates_index.earlier(&row))
        .collect();
    assert_eq!(
        earlier,
        [
            None,
            None,
            None,
            None,
            None,
            Some(3),
            Some(2),
            None,
            Some(2),
            Some(6)
        ]
    );
    assert_eq!(s.duplicates_index.count(), 4);
    // A row at a duplicate's line but with another address is not skipped.
    assert_eq!(
        s.duplicates_index
            .earlier(&Subscriber::test("zed@example.org", 7)),
        None
    );
    assert_eq!(
        s.duplicates_index
            .earlier(&Subscriber::test("b@example.org", 7)),
        Some(3)
    );
}

#[test]
fn index_agrees_with_the_filter() {
    let f = file(&messy_list(5000, 1500));
    let s = survey_in_chunks(f.path(), 100).unwrap();
    let mut filter = DuplicateFilter::new();
    let mut skipped = 0;
    for row in SubscriberReader::open(f.path()).unwrap().flatten() {
        let by_index = s.duplicates_index.earlier(&row);
        if row.status == SubscriptionStatus::Subscribed {
            assert_eq!(by_index, filter.check(&row), "line {}", row.line);
            skipped += u64::from(by_index.is_some());
        } else {
            assert_eq!(by_index, None, "line {}", row.line);
        }
    }
    assert_eq!(skipped, s.duplicates);
}

#[test]
fn conflicts_across_spill_boundaries() {
    let f = file(
        b"email,status\n\
          a@example.org,unsubscribed\n\
          pad1@example.org,\n\
          pad2@example.org,\n\
          A@example.org,subscribed\n\
          a@example.org,\n\
          b@example.org,\n\
          pad3@example.org,\n\
          b@example.org,complained\n\
          pad4@example.org,\n\
          B@example.org,bounced\n\
          c@example.org,bounced\n\
          c@example.org,unsubscribed\n",
    );
    let s = survey_in_chunks(f.path(), 3).unwrap();
    assert_eq!(
        (s.rows, s.subscribed, s.duplicates, s.conflicts),
        (12, 6, 1, 3)
    );
    assert_eq!((s.unsubscribed, s.bounced, s.complained), (2, 2, 1));
    let shown: Vec<String> = s.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "line 5: `A@example.org` is subscribed on line 5 but unsubscribed on line 2, \
             so it would still be mailed; delete the subscribed row or set its status to \
             `unsubscribed`",
            "line 6: `a@example.org` is already on line 5; this row is skipped",
            "line 9: `b@example.org` is subscribed on line 7 but complained on line 9, \
             so it would still be mailed; delete the subscribed row or set its status to \
             `complained`",
            "line 11: `B@example.org` is subscribed on line 7 but bounced on line 11, \
             so it would still be mailed; delete the subscribed row or set its status to \
             `bounced`",
        ]
    );
    assert_same(&s, &survey_in_memory(f.path()), "conflicts");
}

#[test]
fn no_false_duplicates() {
    let mut bytes = b"email,status\n".to_vec();
    for i in 0..20_000 {
        let status = if i % 3 == 0 { "unsubscribed" } else { "" };
        bytes.extend_from_slice(format!("user{i}@example.org,{status}\n").as_bytes());
    }
    let f = file(&bytes);
    let s = survey_in_chunks(f.path(), 1000).unwrap();
    assert_eq!((s.rows, s.duplicates, s.conflicts), (20_000, 0, 0));
    assert_eq!((s.subscribed, s.unsubscribed), (13_333, 6_667));
    assert!(s.problems.is_empty());
    assert_eq!(s.duplicates_index.count(), 0);
}

#[test]
fn problem_cap_counts_sorted_and_read_rows_by_line() {
    // Invalid rows and duplicates alternate; the first 1000 problems are kept.
    let long = format!("{}@{}.example.org", "u".repeat(60), "d".repeat(60));
    let mut bytes = format!("email\n{long}\n").into_bytes();
    for i in 0..1500 {
        bytes.extend_from_slice(b"bad\n");
        let email = if i % 2 == 0 {
            long.to_uppercase()
        } else {
            long.clone()
        };
        bytes.extend_from_slice(format!("{email}\n").as_bytes());
    }
    let f = file(&bytes);
    let s = survey_in_chunks(f.path(), 16).unwrap();
    assert_eq!((s.invalid, s.duplicates, s.subscribed), (1500, 1500, 1));
    assert_eq!(s.problems.len(), MAX_PROBLEMS);
    let lines: Vec<u64> = s.problems.iter().map(RowProblem::line).collect();
    assert_eq!(lines, (3..3 + MAX_PROBLEMS as u64).collect::<Vec<_>>());
    assert!(
        s.problems[1].to_string().starts_with(&format!(
            "line 4: `{}…` is already on line 2",
            &long.to_uppercase()[..100]
        )),
        "{}",
        s.problems[1]
    );
    assert_same(&s, &survey_in_memory(f.path()), "cap");

    // Only duplicates: all 1000 come from the sort.
    let mut bytes = b"email\n".to_vec();
    for _ in 0..1200 {
        bytes.extend_from_slice(b"ann@example.org\n");
    }
    let f = file(&bytes);
    let s = survey_in_chunks(f.path(), 16).unwrap();
    assert_eq!((s.duplicates, s.problems.len()), (1199, MAX_PROBLEMS));
    assert_eq!(s.problems[999].line(), 1002);
    assert_same(&s, &survey_in_memory(f.path()), "only duplicates");
}

#[test]
fn sniffer() {
    let sniff = |s: &[u8]| {
        let mut sniffer = Sniffer::default();
        sniffer.feed(s);
        sniffer.delimiter()
    };
    assert_eq!(sniff(b"email"), b',');
    assert_eq!(sniff(b"\r\n\"a;b\",c\nx;y;z"), b',');
    assert_eq!(sniff(b"a;b,c;d"), b';');
    assert_eq!(sniff(b"a\tb;c\td"), b'\t');
    assert_eq!(sniff(b"a;b,c"), b',');
    assert_eq!(sniff(b",,,\r\n ; ;\n\"x\";y;z,"), b';');
}

/// A million rows, in release mode: `cargo test --release -- --ignored million`.
#[test]
#[ignore = "slow in debug builds: run with `cargo test --release -- --ignored million`"]
fn million_rows() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    {
        let mut w = io::BufWriter::new(f.as_file_mut());
        writeln!(w, "email,first_name,last_name,status,city").unwrap();
        for i in 0..1_000_000 {
            writeln!(w, "user{i}@example.org,First{i},Last{i},subscribed,Town").unwrap();
        }
    }
    let s = survey(f.path()).unwrap();
    assert_eq!((s.rows, s.subscribed), (1_000_000, 1_000_000));
}

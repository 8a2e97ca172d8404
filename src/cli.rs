//! Command-line arguments (clap). No logic lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Compose and send the supporter newsletter.
///
/// An issue is a TOML file under `issues/`; it references archived posts
/// and events by id. `newsletter preview` shows it, `newsletter send` mails
/// it to every subscribed address in the subscriber CSV.
#[derive(Debug, Parser)]
#[command(name = "newsletter", version, about, long_about)]
#[command(after_help = "Examples, in the order of the work:
  newsletter new --date 2022-07-13
  newsletter check 2022-07-13
  newsletter preview 2022-07-13 --serve
  newsletter send 2022-07-13 --test-to office@example.org
  newsletter send 2022-07-13
  newsletter status 2022-07-13")]
pub struct Cli {
    /// The configuration file; paths in it are relative to it [default:
    /// `$NEWSLETTER_CONFIG`, or `newsletter.toml` in this folder or the
    /// nearest folder above it, as git finds a repository].
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// `--config` on each command that reads the configuration (not on
/// `completions` or `man`); on a command with subcommands it is global, so
/// it may come before or after the subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArg {
    /// The configuration file; paths in it are relative to it [default:
    /// `$NEWSLETTER_CONFIG`, or `newsletter.toml` in this folder or the
    /// nearest folder above it, as git finds a repository].
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `--subscribers FILE`, declared once for every command that reads the
/// subscriber list.
#[derive(Debug, Clone, Default, Args)]
pub struct SubscribersArg {
    /// The subscriber CSV [default: `paths.subscribers` in the configuration].
    #[arg(long, value_name = "FILE")]
    pub subscribers: Option<PathBuf>,
}

/// The commands, in the order of the office's work: write, check, look,
/// send, follow up; then the rest.
#[derive(Debug, Subcommand)]
pub enum Command {
    New(NewArgs),
    Check(CheckArgs),
    Preview(PreviewArgs),
    Send(SendArgs),
    Status(StatusArgs),
    Unsubscribe(UnsubscribeArgs),
    Bounces(BouncesArgs),
    Posts(PostsArgs),
    Events(EventsArgs),
    Web(WebArgs),
    Completions(CompletionsArgs),
    Man(ManArgs),
}

impl Cli {
    /// `--config` as given after the command, else before it.
    pub fn config_given(&self) -> Option<PathBuf> {
        let after = match &self.command {
            Command::New(a) => &a.config,
            Command::Check(a) => &a.config,
            Command::Preview(a) => &a.config,
            Command::Send(a) => &a.config,
            Command::Status(a) => &a.config,
            Command::Unsubscribe(a) => &a.config,
            Command::Bounces(a) => &a.config,
            Command::Posts(a) => &a.config,
            Command::Events(a) => &a.config,
            Command::Web(a) => &a.config,
            Command::Completions(_) | Command::Man(_) => return self.config.clone(),
        };
        after.config.clone().or_else(|| self.config.clone())
    }
}

/// Render an issue for one subscriber and write it to a folder.
///
/// Writes `index.html` (the HTML part), `index.txt` (the text part),
/// `message.eml` (the whole message, as a mail app would receive it) and
/// `preview.html` (the HTML part showing its images from `assets/` beside
/// it, copied from the project), then prints their paths. Open
/// `preview.html` in a browser, or `message.eml` in a mail app: the sent
/// email loads its images from the site (`newsletter web build`, then
/// upload `site/`).
///
/// With --serve, shows the issue on a local web page instead (the message as
/// an inbox lists it, the findings of `check`, the desktop and phone views,
/// the text part, then the headers and size) that updates itself whenever
/// the issue, the archive, the theme or the configuration changes. It
/// listens on 127.0.0.1 only; Ctrl-C stops it.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter preview issues/2022-07-13.toml --as zoe@example.org
  newsletter preview issues/2022-07-13.toml --serve     # then open http://127.0.0.1:6397/")]
pub struct PreviewArgs {
    /// The issue file, e.g. `issues/2022-07-13.toml`.
    pub issue: PathBuf,

    /// Where to write the files [default: preview/ISSUE-ID].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Personalise for the subscriber with this address [default: the
    /// first subscribed one].
    #[arg(long = "as", value_name = "ADDRESS")]
    pub as_email: Option<String>,

    #[command(flatten)]
    pub list: SubscribersArg,

    /// Serve a live preview page on http://127.0.0.1:PORT/ instead of
    /// writing files.
    #[arg(long, conflicts_with = "out")]
    pub serve: bool,

    /// The port for --serve; 0 picks a free one. The default is one no
    /// common mail tool uses (Mailpit and MailHog take 8025). The first line
    /// printed is the page's address.
    #[arg(long, value_name = "PORT", default_value_t = 6397, requires = "serve")]
    pub port: u16,

    #[command(flatten)]
    pub config: ConfigArg,
}

/// Send an issue to every subscribed address.
///
/// Before anything is sent the whole subscriber file is checked: invalid
/// addresses stop the run (unless --skip-invalid), duplicates are sent once.
/// The summary shows the count, limits and estimated time, and you confirm by
/// typing the issue id (or pass --yes).
///
/// Every outcome is written to the issue's journal before it counts, so
/// running the same command again after a crash, Ctrl-C or the daily limit
/// continues where it stopped and never mails anyone twice.
///
/// Only one run sends an issue at a time (a second one stops and says who
/// is sending). What `newsletter check` calls an error is never sent. An
/// unsubscribe applied to the subscriber file, or logged by `unsubscribe
/// serve`, while the run goes is honoured before the next message. A
/// journal that is damaged or belongs to another issue stops the run; so
/// does an issue changed after some were sent, unless --accept-changes.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter send issues/2022-07-13.toml --dry-run
  newsletter send issues/2022-07-13.toml --test-to staff@example.org
  newsletter send issues/2022-07-13.toml --yes")]
pub struct SendArgs {
    /// The issue file, e.g. `issues/2022-07-13.toml`.
    pub issue: PathBuf,

    #[command(flatten)]
    pub list: SubscribersArg,

    /// Render and check every message; connect to nothing, record nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Send only to these addresses, subject prefixed `[TEST]`; the journal
    /// is not touched. Repeat for several.
    #[arg(long, value_name = "ADDRESS")]
    pub test_to: Vec<String>,

    /// With --test-to: make each test message the one the subscriber with
    /// this address would get (their merge fields and the sections of their audience).
    #[arg(long = "as", value_name = "ADDRESS", requires = "test_to")]
    pub as_email: Option<String>,

    /// Send at most N messages in this run (the rest stay pending).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,

    /// Send to the valid addresses even if some rows are invalid.
    #[arg(long)]
    pub skip_invalid: bool,

    /// Try again the recipients whose earlier attempt failed permanently.
    #[arg(long)]
    pub retry_failed: bool,

    /// Re-send to recipients whose message was in flight when a run died
    /// (they may get it twice).
    #[arg(long)]
    pub resend_uncertain: bool,

    /// Continue a partly sent issue although the issue, archive, theme or
    /// configuration changed since (the rest get the changed version; the
    /// decision is journaled).
    #[arg(long)]
    pub accept_changes: bool,

    #[command(flatten)]
    pub config: ConfigArg,
}

/// Show how far the sending of an issue has got.
///
/// The counts come from the journal alone: accepted, failed, uncertain
/// (a message in flight when a run stopped), deferred, and possibly twice
/// (two attempts that may each have delivered), with the uncertain and
/// possibly-twice recipients listed. `pending` compares the journal with
/// the subscriber file its first run used (or --subscribers), named.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter status issues/2022-07-13.toml --failed-csv failed.csv
  newsletter status issues/2022-07-13.toml --records
  newsletter status issues/2022-07-13.toml --journal moved-aside.journal --records")]
pub struct StatusArgs {
    /// The issue file, e.g. `issues/2022-07-13.toml`.
    pub issue: PathBuf,

    #[command(flatten)]
    pub list: SubscribersArg,

    /// Write failed recipients with the server's reply to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub failed_csv: Option<PathBuf>,

    /// Set `status` to `bounced` in the subscriber CSV for recipients whose
    /// address was refused (5xx at RCPT TO, e.g. 5.1.1 no such user); a
    /// refusal of the message (DATA) or a policy refusal (5.7.x) is listed,
    /// never applied.
    #[arg(long)]
    pub apply_failures: bool,

    /// With --apply-failures: apply even when many failures share one reply
    /// (which usually means a sending problem, not bad addresses).
    #[arg(long, requires = "apply_failures")]
    pub force: bool,

    /// Read this journal instead of the issue's own (e.g. one moved aside).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Print every record of the journal in words, damaged ones included.
    #[arg(long)]
    pub records: bool,

    #[command(flatten)]
    pub config: ConfigArg,
}

/// Unsubscribe addresses, check unsubscribe links, or serve the endpoint.
///
/// With addresses or unsubscribe URLs (or --from-file), sets `status` to
/// `unsubscribed` for them in the subscriber CSV, in place: only those
/// cells change, the rest of the file is kept byte for byte, and the
/// previous version is kept as `FILE.bak`. Unknown addresses are reported,
/// never added; links whose token does not verify are not applied.
///
/// Exit code: 0 when every input was applied (or already was, or is not in
/// the file), 1 when some input was refused, 2 for an unreadable file.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_help = "Examples:
  newsletter unsubscribe zoe@example.org
  newsletter unsubscribe 'https://news.example.org/unsubscribe/em9lQGV4YW1wbGUub3Jn.…'
  newsletter unsubscribe --from-file unsubscribes.log
  newsletter unsubscribe verify 'https://news.example.org/unsubscribe/…'
  newsletter unsubscribe serve --bind 127.0.0.1:8026")]
pub struct UnsubscribeArgs {
    #[command(subcommand)]
    pub action: Option<UnsubscribeAction>,

    /// Addresses, unsubscribe URLs or tokens.
    #[arg(value_name = "ADDRESS_OR_URL", required_unless_present = "from_file")]
    pub inputs: Vec<String>,

    /// Read addresses, unsubscribe URLs or lines of the endpoint's log from
    /// this file, one a line (blank lines and `#` comments are skipped).
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,

    #[command(flatten)]
    pub list: SubscribersArg,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Subcommand)]
pub enum UnsubscribeAction {
    Verify(VerifyArgs),
    Serve(ServeArgs),
}

/// Print the address an unsubscribe link was made for.
///
/// Exit code 0 and the address when the token (the URL's last path segment,
/// its `token=` parameter, or a bare token) was signed with this list's
/// secret; 1 when it is forged, made with another secret, or malformed.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter unsubscribe verify 'https://news.example.org/unsubscribe/em9lQGV4YW1wbGUub3Jn.…'
  newsletter unsubscribe verify em9lQGV4YW1wbGUub3Jn.…")]
pub struct VerifyArgs {
    /// The unsubscribe URL or token.
    #[arg(value_name = "URL")]
    pub url: String,
}

/// Serve the one-click unsubscribe endpoint (RFC 8058).
///
/// Answers on the path of `unsubscribe-url`. A POST with
/// `List-Unsubscribe=One-Click` and a valid token is appended to the log
/// (synced to disk) and answered 200; a GET shows a page with an Unsubscribe
/// button, so link scanners unsubscribe nobody. Put it behind your HTTPS
/// reverse proxy; apply the log with `newsletter unsubscribe --from-file
/// LOG`. The first line printed is the endpoint's address; Ctrl-C stops.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter unsubscribe serve
  newsletter unsubscribe serve --bind 127.0.0.1:8026 --log unsubscribes.log
  newsletter unsubscribe --from-file unsubscribes.log      # later: apply the log")]
pub struct ServeArgs {
    /// The IP address and port to listen on; port 0 picks a free one.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8026")]
    pub bind: std::net::SocketAddr,

    /// The log of unsubscribes [default: `unsubscribes.log` next to the
    /// configuration].
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Allow listening on an address that is not loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

/// Handle bounce messages (delivery status notifications).
///
/// When an address no longer works, the receiving server mails a report
/// back to the sender. `bounces import` reads those reports (saved from
/// the mailbox of the From address as `.eml` or mbox files) and marks the
/// addresses that are gone as `bounced` in the subscriber CSV, so the next
/// issue does not mail them.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter bounces import ~/Mail/bounces/
  newsletter bounces import bounces.mbox --subscribers subscribers.csv")]
pub struct BouncesArgs {
    #[command(subcommand)]
    pub action: BouncesAction,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Subcommand)]
pub enum BouncesAction {
    Import(ImportArgs),
}

/// Read bounces and mark bounced addresses in the subscriber CSV.
///
/// Reads delivery status notifications (RFC 3464) from `.eml` files,
/// folders of them, or mbox files. A hard bounce (Action: failed) whose
/// status says the address is bad (5.1.x, 5.2.1, 5.4.4, or a plain 550/551/553)
/// sets the recipient's `status` to `bounced`; other permanent failures (a
/// policy refusal, 5.7.x; a message too big, 5.3.4; refused content, 5.6.x)
/// are listed as not marked, with the reason. Soft bounces (4.x.x) are counted
/// per address and issue in `bounces.toml` next to the configuration; soft
/// bounces in 3 different issues make an address `bounced`. Messages that
/// are not bounce reports are listed and skipped.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter bounces import ~/Mail/bounces/
  newsletter bounces import bounces.mbox --subscribers subscribers.csv")]
pub struct ImportArgs {
    /// `.eml` files, folders of them, or mbox files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub list: SubscribersArg,
}

/// Check issues, the archive, the subscriber file and the configuration.
///
/// Renders every issue and lints what would be sent: dangling post and event
/// ids, links that are not https://, images without alt text, an HTML part
/// Gmail would clip, text lines over 78 characters, a text part that differs
/// from the HTML part, invalid or duplicate subscribers, and unsafe sending
/// settings. Connects to nothing, so it is safe in CI.
///
/// Exit code: 0 when there are no errors (warnings allowed unless --strict),
/// 1 when anything is wrong, 2 when an input cannot be read.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter check
  newsletter check issues/2022-07-13.toml --strict
  newsletter check --format github      # annotations in a GitHub Actions log")]
pub struct CheckArgs {
    /// Issue files to check [default: every file under `paths.issues`].
    pub issues: Vec<PathBuf>,

    #[command(flatten)]
    pub list: SubscribersArg,

    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    /// Grouped by file, for people.
    Text,
    /// One JSON document.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`).
    Github,
}

/// Print a shell completion script.
///
/// Load it in the current shell, or install it where your shell looks for
/// completions.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  source <(newsletter completions bash)
  newsletter completions zsh > ~/.zfunc/_newsletter
  newsletter completions fish > ~/.config/fish/completions/newsletter.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Print the man page (roff) on standard output.
///
/// The page lists every command and option, as `--help` does. View it with
/// `man -l -`, or install it where `man` looks.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter man | man -l -
  newsletter man > /usr/local/share/man/man1/newsletter.1")]
pub struct ManArgs {}

/// Start a new issue file from the skeleton `templates/issue.toml`.
///
/// Writes `issues/DATE.toml` with placeholders for the subject, preheader,
/// letter and sign-off, the donate link as call to action, and, commented
/// out and ready to uncomment, the posts new since the last issue and the
/// events on or after DATE. Never overwrites an existing file.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter new
  newsletter new --date 2022-07-13")]
pub struct NewArgs {
    /// The issue date, YYYY-MM-DD [default: today in Europe/London].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::model::dates::parse_arg)]
    pub date: Option<jiff::civil::Date>,

    #[command(flatten)]
    pub config: ConfigArg,
}

/// Build the public web pages of the newsletter.
///
/// `web build` writes the site the emails link to: each issue's "view in
/// browser" page, an index of issues, the unsubscribe page and a calendar
/// file for every event. Upload the folder it writes to the address in
/// `web-version-url`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter web build
  newsletter web build --out /var/www/news")]
pub struct WebArgs {
    #[command(subcommand)]
    pub action: WebAction,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Subcommand)]
pub enum WebAction {
    Build(WebBuildArgs),
}

/// Write the static site: the "view in browser" page of every issue, an
/// index of issues and an "Add to calendar" file for every event.
///
/// Writes `DIR/index.html` (every issue, newest first),
/// `DIR/issues/ISSUE/index.html` (the issue as emailed, with the greeting's
/// fallback and no personal data: `web-version-url` in the configuration
/// points here), `DIR/events/EVENT.ics` (RFC 5545, linked from the events in
/// emails and pages) and `DIR/unsubscribe.html`. Upload the folder as the
/// root of the site. Building again gives the same bytes.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter web build
  newsletter web build --out /var/www/news")]
pub struct WebBuildArgs {
    /// The folder to write [default: `site` next to the configuration].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Manage the archive of blog posts.
///
/// Issues name posts by id; the posts live in `archive/posts.toml` (see
/// `paths.posts`). `posts import` adds the blog's new posts to it from the
/// blog's RSS or Atom feed, keeping the rest of the file as it is;
/// `posts list` shows them, or searches them.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter posts list --search human rights act
  newsletter posts import https://www.renecassin.org/feed/
  newsletter posts import feed.xml")]
pub struct PostsArgs {
    #[command(subcommand)]
    pub action: PostsAction,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Subcommand)]
pub enum PostsAction {
    List(PostsListArgs),
    Import(PostsImportArgs),
}

/// Add the new posts of the blog's RSS or Atom feed to the archive.
///
/// Reads an RSS 2.0 or Atom feed from a file or an https:// URL and adds
/// each item whose URL and id are not yet in `archive/posts.toml` above the
/// first post, with its title, author (`dc:creator`), date and a short
/// summary. The id is the slug of the title. Existing entries, comments and
/// hand edits are kept byte for byte, so importing the same feed again adds
/// nothing.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter posts import https://www.renecassin.org/feed/
  newsletter posts import feed.xml")]
pub struct PostsImportArgs {
    /// The feed: a file, or an https:// URL.
    #[arg(value_name = "FEED")]
    pub feed: String,
}

/// List the archived posts, or search them.
///
/// Prints each post's id (what an issue's `posts = [...]` takes), title,
/// author, date, and the issues that already use it, newest first.
///
/// With --search, only the posts in which every word of the search begins a
/// word of the title, author, summary or id, ignoring case and accents
/// (`reseau` finds `Réseau`, `refug` finds `refugees`); best matches first:
/// the post whose id is the search, then those with more of the words in
/// their title, then those with the words in a row in their title, then
/// those with more of the words in their author.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter posts list
  newsletter posts list --search human rights act
  newsletter posts list --search rene cassin --format tsv")]
pub struct PostsListArgs {
    /// Only the posts with these words, best match first.
    #[arg(long, value_name = "WORDS", num_args = 1..)]
    pub search: Vec<String>,

    /// How to print the list.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// A few lines per entry, for people.
    Text,
    /// Tab-separated values with a header line, one entry a line.
    Tsv,
}

/// List and add the events issues announce.
///
/// Issues name events by id; the events live in `archive/events.toml` (see
/// `paths.events`). `events list` shows them by start, `events add` adds
/// one from flags, checked like the file, keeping the rest of it as it is.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter events list --upcoming
  newsletter events add --title \"Disability Rights\" --start 2027-03-04T18:00 --online")]
pub struct EventsArgs {
    #[command(subcommand)]
    pub action: EventsAction,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Subcommand)]
pub enum EventsAction {
    List(EventsListArgs),
    Add(EventsAddArgs),
}

/// List the archived events, by start.
///
/// Prints each event's id (what an issue's `events = [...]` takes), start
/// with its time zone, title, place (or Online), and the issues that
/// already use it. With --upcoming, only the events on or after today (in
/// Europe/London).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter events list
  newsletter events list --upcoming
  newsletter events list --format tsv")]
pub struct EventsListArgs {
    /// Only the events on or after today.
    #[arg(long)]
    pub upcoming: bool,

    /// How to print the list.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// Add an event to `archive/events.toml`, ready to use in an issue.
///
/// The id is made from the title (lowercase, accents dropped, words joined
/// by `-`), with the start date added when another event has it already.
/// The event is checked as loading the archive checks it, then added at the
/// end of the file; every byte already there stays as it was. Times are
/// local to --time-zone (by default the file's `time-zone`). Prints the id
/// and how to use it in an issue.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter events add --title \"Disability Rights\" --start 2027-03-04T18:00 --end 19:30 --online
  newsletter events add --title \"Refugee Week film night\" --start 2027-06-21T19:00 \\
      --place \"JW3, 341-351 Finchley Road, London\" --partner \"Generation2Generation\" \\
      --booking-url https://www.example.org/book/ --summary \"A film and a conversation.\"")]
#[command(group(clap::ArgGroup::new("where").required(true).args(["place", "online"])))]
pub struct EventsAddArgs {
    /// The title supporters see.
    #[arg(long, value_name = "TITLE")]
    pub title: String,

    /// When it starts, local time: year-month-day, `T`, then the 24-hour
    /// time, like 2027-03-04T18:00.
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM", value_parser = crate::model::event_time::parse_start)]
    pub start: jiff::civil::DateTime,

    /// When it ends, like --start, or only the time (19:30) for the same day.
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM", value_parser = crate::model::event_time::parse_end)]
    pub end: Option<crate::model::event_time::End>,

    /// The time zone of --start and --end, like Europe/London [default: the
    /// file's `time-zone`].
    #[arg(long, value_name = "ZONE", value_parser = crate::model::event_time::parse_zone)]
    pub time_zone: Option<String>,

    /// Where it takes place, as supporters should read it.
    #[arg(long, value_name = "PLACE")]
    pub place: Option<String>,

    /// It takes place online (the place reads "Online").
    #[arg(long)]
    pub online: bool,

    /// Who runs it with the charity.
    #[arg(long, value_name = "NAME")]
    pub partner: Option<String>,

    /// Where supporters book a place: a full https:// address.
    #[arg(long, value_name = "URL")]
    pub booking_url: Option<String>,

    /// A sentence or two about it, shown under the title.
    #[arg(long, value_name = "TEXT")]
    pub summary: Option<String>,
}

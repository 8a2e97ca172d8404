//! Command-line arguments (clap) of the commands that find and add archive
//! content: `posts list`, `events list`, `events add`. Beside `cli.rs`,
//! which names them; no logic lives here.

use clap::{Args, Subcommand, ValueEnum};

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
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  newsletter events list --upcoming
  newsletter events add --title \"Disability Rights\" --start 2027-03-04T18:00 --online")]
pub struct EventsArgs {
    #[command(subcommand)]
    pub action: EventsAction,
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
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM", value_parser = crate::event_time::parse_start)]
    pub start: jiff::civil::DateTime,

    /// When it ends, like --start, or only the time (19:30) for the same day.
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM", value_parser = crate::event_time::parse_end)]
    pub end: Option<crate::event_time::End>,

    /// The time zone of --start and --end, like Europe/London [default: the
    /// file's `time-zone`].
    #[arg(long, value_name = "ZONE", value_parser = crate::event_time::parse_zone)]
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

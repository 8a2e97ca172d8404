//! Just enough HTTP/1.1 for the unsubscribe endpoint: one bounded request
//! per connection, then the answer and `Connection: close`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body.
pub const MAX_BODY: usize = 1024;
/// Time a client has to send its whole request.
pub const REQUEST_TIME: Duration = Duration::from_secs(10);

/// A request as read from the connection.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value (the first, trimmed), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query, without `?`; empty when there is none.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// The status of a connection that closed or idled without sending a
/// byte (a browser's spare connection): it gets no answer and no log line.
pub const SILENT: u16 = 0;

/// A request that cannot be served: the status to answer, and the method
/// when the request line was read.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub method: Option<String>,
}

impl From<u16> for Refusal {
    fn from(status: u16) -> Refusal {
        Refusal {
            status,
            method: None,
        }
    }
}

/// Reads a request head, and its body when `wants_body` says so for the
/// head read.
pub fn read(
    stream: &mut TcpStream,
    wants_body: impl FnOnce(&Request) -> bool,
) -> Result<Request, Refusal> {
    let deadline = Instant::now() + REQUEST_TIME;
    let mut buffer = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Err(431.into());
        }
        match read_more(stream, &mut buffer, deadline) {
            Ok(0) if buffer.is_empty() => return Err(SILENT.into()),
            Ok(0) => return Err(400.into()),
            Ok(_) => {}
            Err(_) if buffer.is_empty() => return Err(SILENT.into()),
            Err(status) => return Err(status.into()),
        }
    };
    if head_end > MAX_HEAD {
        return Err(431.into());
    }
    let mut request = parse_head(&buffer[..head_end]).ok_or(400u16)?;
    let mut body = buffer.split_off(head_end + 4);
    if !wants_body(&request) {
        return Ok(request);
    }
    let refuse = |status: u16| Refusal {
        status,
        method: Some(request.method.clone()),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(refuse(411));
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(value) => value.parse::<usize>().map_err(|_| refuse(400))?,
    };
    if length > MAX_BODY {
        return Err(refuse(413));
    }
    while body.len() < length {
        match read_more(stream, &mut body, deadline) {
            Ok(0) => return Err(refuse(400)),
            Ok(_) => {}
            Err(status) => return Err(refuse(status)),
        }
    }
    body.truncate(length);
    request.body = body;
    Ok(request)
}

/// Reads what has arrived, waiting no later than `deadline`.
fn read_more(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, u16> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(408);
    }
    stream.set_read_timeout(Some(left)).map_err(|_| 400u16)?;
    let mut chunk = [0u8; 2048];
    match stream.read(&mut chunk) {
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(408)
        }
        Err(_) => Err(400),
    }
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || !version.starts_with("HTTP/1.")
        || !target.starts_with('/')
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
    {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
    })
}

/// An answer to send.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
        }
    }

    pub fn html(status: u16, html: String) -> Response {
        Response {
            status,
            content_type: "text/html; charset=utf-8",
            body: html.into_bytes(),
        }
    }

    /// Writes the answer (`with_body` false for HEAD), then closes the
    /// connection after reading what the client still sends for a moment,
    /// so it sees the answer rather than a reset.
    pub fn send(self, mut stream: TcpStream, with_body: bool) -> io::Result<()> {
        stream.set_write_timeout(Some(REQUEST_TIME))?;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nX-Robots-Tag: noindex\r\nContent-Security-Policy: {CSP}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            head.push_str("Allow: GET, HEAD, POST\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        if with_body {
            stream.write_all(&self.body)?;
        }
        stream.flush()?;
        stream.shutdown(Shutdown::Write)?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        Ok(())
    }
}

/// Styles inline only, forms only to this site, no framing.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    }
}

/// The value of `key` in an `application/x-www-form-urlencoded` text.
pub fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| super::link::percent_decode(&s.replace('+', " "));
        (decode(k) == key).then(|| decode(v))
    })
}

/// The value of the field `name` in a `multipart/form-data` body.
pub fn multipart_value(body: &[u8], content_type: &str, name: &str) -> Option<String> {
    let boundary = content_type.split(';').find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })?;
    let body = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    body.split(delimiter.as_str()).find_map(|part| {
        let part = part.strip_prefix("\r\n")?;
        let (headers, value) = part.split_once("\r\n\r\n")?;
        let named = headers.lines().any(|line| {
            let line = line.to_ascii_lowercase();
            line.starts_with("content-disposition:")
                && line.contains("form-data")
                && line.contains(&format!("name=\"{}\"", name.to_ascii_lowercase()))
        });
        named.then(|| value.strip_suffix("\r\n").unwrap_or(value).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_form_fields() {
        assert_eq!(
            form_value("a=1&List-Unsubscribe=One-Click", "List-Unsubscribe").as_deref(),
            Some("One-Click")
        );
        assert_eq!(
            form_value("List%2DUnsubscribe=One%2dClick", "List-Unsubscribe").as_deref(),
            Some("One-Click")
        );
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_value(
                body,
                "multipart/form-data; boundary=\"XyZ\"",
                "List-Unsubscribe"
            )
            .as_deref(),
            Some("One-Click")
        );
        assert_eq!(
            multipart_value(body, "multipart/form-data", "List-Unsubscribe"),
            None
        );
    }

    #[test]
    fn parses_heads() {
        let request =
            parse_head(b"POST /u/x?a=b HTTP/1.1\r\nHost: x\r\nContent-Length: 3").unwrap();
        assert_eq!((request.path(), request.query()), ("/u/x", "a=b"));
        assert_eq!(request.header("content-length"), Some("3"));
        assert!(parse_head(b"GET http://x/ HTTP/1.1").is_none());
        assert!(parse_head(b"GET / HTTP/1.1\r\nbad header").is_none());
    }
}

//! The endpoint's answers, over the shared HTTP layer ([`crate::http`]).
//!
//! A POST on the route has its body read first (so that a body too large
//! is refused before anything else, whoever it names); then the token is
//! checked, a GET or HEAD gets the confirmation page, and a POST that says
//! `List-Unsubscribe=One-Click` is written to the log, synced, before the
//! 200.

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request};
use tokio::time::Instant;

use crate::http::{self, Reply};
use crate::unsubscribe::link;
use crate::unsubscribe::pages;
use crate::unsubscribe::serve::Endpoint;

/// Largest request body.
pub const MAX_BODY: usize = 1024;

/// Answers one request.
pub async fn answer(
    endpoint: Arc<Endpoint>,
    request: Request<Incoming>,
    send_by: Instant,
) -> Reply {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or_default();
    let Some(token) = endpoint.route.token(path, query) else {
        return Reply::text(404, "not found\n");
    };
    let post = parts.method == Method::POST;
    // Only a POST on the route has a body worth reading.
    let body = match post {
        true => match http::read_body(body, &parts.headers, MAX_BODY, send_by).await {
            Ok(body) => body,
            Err(status) => return Reply::text(status, &format!("{}\n", http::reason(status))),
        },
        false => Bytes::new(),
    };
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::POST) {
        return Reply::text(405, "only GET and POST are answered here\n")
            .header(header::ALLOW, "GET, HEAD, POST");
    }
    let list = &endpoint.list;
    let address = match link::check(&endpoint.signer, &token) {
        Ok(address) => address,
        Err(_) => return Reply::html(400, pages::invalid(list)),
    };
    if !post {
        return Reply::html(200, pages::confirm(list, &address)).note(address);
    }
    match one_click(&parts.headers, body).await {
        Ok(true) => {}
        Ok(false) => {
            return Reply::text(
                400,
                "this request did not ask to unsubscribe: send `List-Unsubscribe=One-Click` in the body\n",
            )
            .note(address);
        }
        Err(status) => return Reply::text(status, "send the body as a form\n").note(address),
    }
    if let Err(error) = endpoint.record(&address).await {
        eprintln!("error: {error}");
        return Reply::html(500, pages::failed(list)).note(address);
    }
    let browser = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let reply = match browser {
        true => Reply::html(200, pages::done(list, &address)),
        false => Reply::text(200, "You are unsubscribed.\n"),
    };
    reply.note(address)
}

/// Whether a POST body says `List-Unsubscribe=One-Click` (RFC 8058), as a
/// URL-encoded or multipart form; `Err` for another content type (415).
async fn one_click(headers: &HeaderMap, body: Bytes) -> Result<bool, u16> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let value = match kind.as_str() {
        "" | "application/x-www-form-urlencoded" => form_value(&body, "List-Unsubscribe"),
        "multipart/form-data" => multipart_value(body, &content_type, "List-Unsubscribe").await,
        _ => return Err(415),
    };
    Ok(value.is_some_and(|v| v.trim().eq_ignore_ascii_case("One-Click")))
}

/// The value of `key` in an `application/x-www-form-urlencoded` text.
pub fn form_value(form: &[u8], key: &str) -> Option<String> {
    form_urlencoded::parse(form)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The value of the field `name` in a `multipart/form-data` body.
async fn multipart_value(body: Bytes, content_type: &str, name: &str) -> Option<String> {
    let boundary = multer::parse_boundary(content_type).ok()?;
    let mut form = multer::Multipart::new(Full::new(body).into_data_stream(), boundary);
    while let Some(field) = form.next_field().await.ok()? {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_form_fields() {
        assert_eq!(
            form_value(b"a=1&List-Unsubscribe=One-Click", "List-Unsubscribe").as_deref(),
            Some("One-Click")
        );
        assert_eq!(
            form_value(b"List%2DUnsubscribe=One%2dClick", "List-Unsubscribe").as_deref(),
            Some("One-Click")
        );
        assert_eq!(
            form_value(b"List-Unsubscribe", "List-Unsubscribe").as_deref(),
            Some("")
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n",
        );
        let value = |content_type: &'static str| {
            runtime.block_on(multipart_value(
                body.clone(),
                content_type,
                "List-Unsubscribe",
            ))
        };
        assert_eq!(
            value("multipart/form-data; boundary=\"XyZ\"").as_deref(),
            Some("One-Click")
        );
        assert_eq!(value("multipart/form-data"), None);
    }
}

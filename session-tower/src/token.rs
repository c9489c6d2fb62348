//! The token on the wire: reading it from a request (cookie or header) and
//! writing the new one, a refreshed one or its removal into a response.

use cookie::Cookie;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use session_core::{SessionId, Timestamp};

use crate::config::{SessionConfig, TokenSource};

/// What the request carried.
#[derive(Debug, Clone)]
pub(crate) enum Token {
    /// No token at all.
    Missing,
    /// Something under the token's name that is not a well-formed id: no
    /// session, and no store call for it.
    Malformed,
    /// A well-formed id (live or not: only the store knows).
    Valid(SessionId),
}

impl Token {
    pub(crate) fn id(&self) -> Option<&SessionId> {
        match self {
            Token::Valid(id) => Some(id),
            _ => None,
        }
    }
}

/// Reads the request's token, without any store call.
///
/// Cookie mode: every `Cookie` header (HTTP/2 may send several) is split
/// into pairs; the first pair with the configured name whose value is a
/// well-formed id wins, in the order the browser sent them. Pairs with
/// other names, unparsable pairs, header values that are not visible ASCII
/// and extra pairs with our name are ignored, so a malformed or planted
/// cookie is never an error. (Browsers put cookies with longer paths
/// first; a `__Host-` cookie cannot be planted by a subdomain or a
/// plain-http page at all, which is why it is the default.)
pub(crate) fn read(config: &SessionConfig, headers: &HeaderMap) -> Token {
    match &config.source {
        TokenSource::Cookie => {
            let mut seen = false;
            for value in headers.get_all(COOKIE) {
                let Ok(text) = value.to_str() else { continue };
                for pair in Cookie::split_parse(text).flatten() {
                    if pair.name() != config.name {
                        continue;
                    }
                    seen = true;
                    if let Ok(id) = SessionId::parse(pair.value()) {
                        return Token::Valid(id);
                    }
                }
            }
            if seen { Token::Malformed } else { Token::Missing }
        }
        TokenSource::Header { name, scheme, .. } => {
            let mut values = headers.get_all(name).iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                // None, or several: ambiguous, so none.
                return if headers.contains_key(name) {
                    Token::Malformed
                } else {
                    Token::Missing
                };
            };
            let Ok(text) = value.to_str() else {
                return Token::Malformed;
            };
            let text = text.trim();
            let token = match scheme {
                None => text,
                Some(scheme) => match text.split_once(' ') {
                    Some((s, rest)) if s.eq_ignore_ascii_case(scheme) => rest.trim_start(),
                    _ => return Token::Malformed,
                },
            };
            match SessionId::parse(token) {
                Ok(id) => Token::Valid(id),
                Err(_) => Token::Malformed,
            }
        }
    }
}

/// What the response must tell the client about its token.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A new token (a session created or rotated in this request).
    Issue { id: SessionId, expires_at: Timestamp },
    /// The same token with a later deadline (persistent cookies only).
    Refresh { id: SessionId, expires_at: Timestamp },
    /// Forget the token (logout).
    Remove,
}

/// Writes `out` into `headers`. Returns whether a token or its removal was
/// written (the response then must not be cached).
pub(crate) fn write(config: &SessionConfig, headers: &mut HeaderMap, out: &Outgoing, now: Timestamp) -> bool {
    match &config.source {
        TokenSource::Cookie => {
            let cookie = match out {
                Outgoing::Issue { id, expires_at } | Outgoing::Refresh { id, expires_at } => {
                    let mut c = base_cookie(config, id.expose().to_owned());
                    if config.persistent() {
                        // Whole seconds, rounded down: the cookie never
                        // outlives the server's deadline.
                        let secs = now.until(*expires_at).as_secs();
                        c.set_max_age(cookie::time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)));
                    }
                    c
                }
                Outgoing::Remove => {
                    // The same name, Path, Domain, Secure, HttpOnly and
                    // SameSite as the cookie it removes: a browser ignores a
                    // removal that differs (a `__Host-` one without Secure,
                    // another Path), and the user would stay logged in.
                    let mut c = base_cookie(config, String::new());
                    c.make_removal();
                    c
                }
            };
            match HeaderValue::try_from(cookie.to_string()) {
                Ok(v) => {
                    headers.append(SET_COOKIE, v);
                    true
                }
                Err(_) => {
                    // Unreachable with a validated configuration and a
                    // base64url token; never panic on it anyway.
                    tracing::error!("could not encode the session cookie as a header value");
                    false
                }
            }
        }
        TokenSource::Header { response, .. } => {
            let value = match out {
                Outgoing::Issue { id, .. } => HeaderValue::from_str(id.expose()),
                Outgoing::Refresh { .. } => return false,
                Outgoing::Remove => Ok(HeaderValue::from_static("")),
            };
            match value {
                Ok(v) => {
                    headers.insert(response.clone(), v);
                    true
                }
                Err(_) => false,
            }
        }
    }
}

fn base_cookie(config: &SessionConfig, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(config.name.clone(), value);
    c.set_secure(config.secure);
    c.set_http_only(config.http_only);
    c.set_same_site(config.same_site);
    c.set_path(config.path.clone());
    if let Some(domain) = &config.domain {
        c.set_domain(domain.clone());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).expect("ascii"));
        }
        h
    }

    #[test]
    fn the_first_well_formed_cookie_with_our_name_wins() {
        let config = SessionConfig::default();
        let a = SessionId::from_bytes([1; 32]);
        let b = SessionId::from_bytes([2; 32]);
        let h = headers(&[
            "other=1; __Host-id=garbage",
            &format!("__Host-id={}; __Host-id={}", a.expose(), b.expose()),
        ]);
        assert!(matches!(read(&config, &h), Token::Valid(id) if id == a));
        assert!(matches!(read(&config, &headers(&["__Host-id=nope"])), Token::Malformed));
        assert!(matches!(
            read(&config, &headers(&["id=x; __host-id=y"])),
            Token::Missing
        ));
        assert!(matches!(read(&config, &HeaderMap::new()), Token::Missing));
    }

    #[test]
    fn hostile_cookie_headers_are_no_session_and_never_panic() {
        let config = SessionConfig::default();
        let huge = format!("__Host-id={}", "A".repeat(1 << 20));
        for text in [
            huge.as_str(),
            ";;;;",
            "=",
            "__Host-id",
            "__Host-id=\"quoted\"",
            "__Host-id=%00%ff",
            "\t__Host-id = x ;",
        ] {
            let t = read(&config, &headers(&[text]));
            assert!(!matches!(t, Token::Valid(_)), "{text:?}");
        }
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_bytes(b"__Host-id=\xff\xfe").expect("opaque bytes"),
        );
        assert!(matches!(read(&config, &h), Token::Missing));
    }

    #[test]
    fn a_bearer_header_is_read_with_its_scheme() {
        let config = SessionConfig::default().token_source(TokenSource::bearer());
        let id = SessionId::from_bytes([3; 32]);
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("bearer {}", id.expose())).expect("ascii"),
        );
        assert!(matches!(read(&config, &h), Token::Valid(got) if got == id));
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", id.expose())).expect("ascii"),
        );
        assert!(matches!(read(&config, &h), Token::Malformed));
        // A session cookie means nothing in header mode.
        let c = headers(&[&format!("__Host-id={}", id.expose())]);
        assert!(matches!(read(&config, &c), Token::Missing));
    }

    #[test]
    fn the_removal_cookie_repeats_every_attribute() {
        let config = SessionConfig::default();
        let mut h = HeaderMap::new();
        assert!(write(&config, &mut h, &Outgoing::Remove, Timestamp::from_millis(0)));
        let text = h.get(SET_COOKIE).expect("set").to_str().expect("ascii");
        for part in [
            "__Host-id=",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=0",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
        assert!(!text.contains("Domain"));
    }
}

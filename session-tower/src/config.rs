//! [`SessionConfig`]: where the token travels, the cookie's attributes and
//! what the layer answers when the store fails.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use session_core::ConfigError;

pub use cookie::SameSite;

use crate::Error;

/// How long the browser keeps the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieLifetime {
    /// `Max-Age` is the session's real deadline, `min(idle, absolute)`,
    /// rounded down to whole seconds so the cookie never outlives the
    /// server's session; refreshed whenever that deadline moves. A user who
    /// closes the browser comes back logged in while the session lives.
    #[default]
    Persistent,
    /// No `Max-Age`: the browser drops the cookie when it closes (browsers
    /// that restore sessions may keep it). The server's deadlines still
    /// apply, and the cookie never needs a refresh.
    BrowserSession,
}

/// Where the session token comes from and goes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenSource {
    /// A cookie (the default): what browsers send by themselves.
    #[default]
    Cookie,
    /// A request header, for API clients (like Spring Session's header
    /// resolver). A new token is sent in the `response` header, an empty
    /// value of it on logout. No cookie is set or read and no CSRF check
    /// applies: a browser never adds this header by itself, which is what a
    /// cross-site request forgery relies on.
    Header {
        /// The request header holding the token, e.g. `authorization`.
        name: HeaderName,
        /// A scheme before the token (`Bearer` in `Authorization: Bearer
        /// <token>`), matched without regard to case; `None` for the bare
        /// token.
        scheme: Option<String>,
        /// The response header that carries a new token, e.g.
        /// `x-session-token`.
        response: HeaderName,
    },
}

impl TokenSource {
    /// `Authorization: Bearer <token>` in, `x-session-token: <token>` out.
    ///
    /// ```
    /// use session_tower::{SessionConfig, TokenSource};
    ///
    /// let config = SessionConfig::default().token_source(TokenSource::bearer());
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn bearer() -> Self {
        TokenSource::Header {
            name: AUTHORIZATION,
            scheme: Some("Bearer".to_owned()),
            response: HeaderName::from_static("x-session-token"),
        }
    }
}

/// Builds the response the layer sends instead of the handler's when a
/// store call at the end of the request fails. It gets the error (log it if
/// you like; it holds no token) and never sees the handler's response.
pub type ErrorResponder = Arc<dyn Fn(&Error) -> Response<Bytes> + Send + Sync>;

/// The layer's settings. Every default is the secure choice; each builder
/// method says what its default protects against.
///
/// ```
/// use std::time::Duration;
/// use session_tower::{CookieLifetime, SameSite, SessionConfig};
///
/// // The defaults: `__Host-id`, Secure, HttpOnly, SameSite=Lax, Path=/, no
/// // Domain, Max-Age from the session's deadline.
/// let config = SessionConfig::default();
/// assert_eq!(config.cookie_name_str(), "__Host-id");
///
/// // Plain http during development: a `__Host-` cookie requires Secure, so
/// // dropping Secure means renaming the cookie too, or validation refuses.
/// assert!(SessionConfig::default().secure(false).validate().is_err());
/// let dev = SessionConfig::default().secure(false).cookie_name("id");
/// assert!(dev.validate().is_ok());
///
/// // A browser-session cookie, SameSite=Strict, a clear-site-data logout.
/// let strict = SessionConfig::default()
///     .lifetime(CookieLifetime::BrowserSession)
///     .same_site(SameSite::Strict)
///     .clear_site_data_on_logout(true);
/// assert!(strict.validate().is_ok());
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) name: String,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) lifetime: CookieLifetime,
    pub(crate) source: TokenSource,
    pub(crate) clear_site_data: bool,
    pub(crate) max_save_attempts: u32,
    pub(crate) error_response: ErrorResponder,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("name", &self.name)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("lifetime", &self.lifetime)
            .field("source", &self.source)
            .field("clear_site_data", &self.clear_site_data)
            .field("max_save_attempts", &self.max_save_attempts)
            .finish_non_exhaustive()
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            name: "__Host-id".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            lifetime: CookieLifetime::Persistent,
            source: TokenSource::Cookie,
            clear_site_data: false,
            max_save_attempts: 8,
            error_response: Arc::new(default_error_response),
        }
    }
}

/// The default answer to a store failure at the end of a request: `500`,
/// `text/plain`, a generic body.
pub fn default_error_response(_error: &Error) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from_static(b"Internal Server Error"));
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

impl SessionConfig {
    /// The cookie's name. Default `__Host-id`: a generic name (it says
    /// nothing about the framework, as OWASP advises), and the `__Host-`
    /// prefix makes browsers refuse the cookie unless it is `Secure`, has
    /// `Path=/` and no `Domain`, so a sibling subdomain or a plain-http
    /// page cannot plant or overwrite it (session fixation, cookie
    /// tossing). [`validate`](Self::validate) refuses a `__Host-` name
    /// without those attributes, and a `__Secure-` name without `Secure`.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The cookie's name as configured.
    pub fn cookie_name_str(&self) -> &str {
        &self.name
    }

    /// `Secure` (default `true`): the browser sends the cookie over HTTPS
    /// only, so nobody on the network path reads or replaces the token.
    /// Browsers treat `http://localhost` and `http://127.0.0.1` as secure, so
    /// development works with it on.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// `HttpOnly` (default `true`): scripts cannot read the cookie
    /// (`document.cookie`), so an XSS bug cannot steal the token.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// `SameSite` (default `Lax`): the browser leaves the cookie off
    /// cross-site subrequests and cross-site POSTs, a first defence against
    /// CSRF (the synchronizer token of [`CsrfLayer`](crate::CsrfLayer) is the
    /// second). `Strict` also drops it on top-level links from other sites,
    /// which logs users out on every inbound link; `None` requires `Secure`.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// `Path` (default `/`): the whole site shares the session. A `__Host-`
    /// cookie must have `/`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// `Domain` (default none): without it the cookie goes to this exact
    /// host only, never to subdomains, which may be run by someone else. A
    /// `__Host-` cookie must not have one.
    pub fn domain(mut self, domain: Option<String>) -> Self {
        self.domain = domain;
        self
    }

    /// Persistent (`Max-Age` = the session's deadline, the default) or a
    /// browser-session cookie. See [`CookieLifetime`].
    pub fn lifetime(mut self, lifetime: CookieLifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Cookie (default) or a request header, for APIs. See [`TokenSource`].
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.source = source;
        self
    }

    /// Whether a logout response also carries `Clear-Site-Data: "cache",
    /// "cookies", "storage"` (default `false`), as OWASP suggests: the
    /// browser then drops everything the site stored, not only the session
    /// cookie. Off by default because it also clears unrelated cookies and
    /// storage of the origin.
    pub fn clear_site_data_on_logout(mut self, on: bool) -> Self {
        self.clear_site_data = on;
        self
    }

    /// How many times a save that lost a version race is re-applied to a
    /// fresh copy before the request fails (default 8). Writers in one
    /// process take turns per session, so this bounds races between
    /// processes sharing a store.
    pub fn max_save_attempts(mut self, attempts: u32) -> Self {
        self.max_save_attempts = attempts;
        self
    }

    /// The response sent instead of the handler's when a store call at the
    /// end of the request fails (default [`default_error_response`]: a
    /// generic `500`). Cookies for store changes already made (a login, a
    /// logout) are still added to it.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Response, StatusCode};
    /// use session_tower::SessionConfig;
    ///
    /// let config = SessionConfig::default().error_response(|_error| {
    ///     let mut res = Response::new(Bytes::from_static(b"try again in a moment"));
    ///     *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    ///     res
    /// });
    /// # let _ = config;
    /// ```
    pub fn error_response<F>(mut self, respond: F) -> Self
    where
        F: Fn(&Error) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.error_response = Arc::new(respond);
        self
    }

    pub(crate) fn persistent(&self) -> bool {
        self.lifetime == CookieLifetime::Persistent
    }

    pub(crate) fn uses_cookie(&self) -> bool {
        self.source == TokenSource::Cookie
    }

    /// Checks that the settings can work, as
    /// [`SessionLayer::new`](crate::SessionLayer::new) does.
    ///
    /// Errors: [`session_core::Error::Config`] naming the setting: a cookie
    /// name that is empty or not an RFC 6265 token; a `__Host-` name without
    /// `Secure`, with a `Path` other than `/` or with a `Domain`; a
    /// `__Secure-` name or `SameSite=None` without `Secure`; a path not
    /// starting with `/` or a path or domain holding `;`, spaces or control
    /// characters; a header scheme with whitespace; zero save attempts.
    pub fn validate(&self) -> Result<(), session_core::Error> {
        let refuse = |setting: &str, problem: &str| Err(ConfigError::new(setting, problem).into());
        if self.name.is_empty() || !self.name.bytes().all(is_token_char) {
            return refuse(
                "cookie_name",
                "must be a non-empty RFC 6265 token (visible ASCII without separators)",
            );
        }
        let lower = self.name.to_ascii_lowercase();
        if lower.starts_with("__host-") {
            if !self.secure {
                return refuse(
                    "secure",
                    "a __Host- cookie must be Secure (browsers drop it otherwise); rename the cookie to turn Secure off",
                );
            }
            if self.path != "/" {
                return refuse("path", "a __Host- cookie must have Path=/");
            }
            if self.domain.is_some() {
                return refuse("domain", "a __Host- cookie must not have a Domain");
            }
        }
        if lower.starts_with("__secure-") && !self.secure {
            return refuse("secure", "a __Secure- cookie must be Secure");
        }
        if self.same_site == SameSite::None && !self.secure {
            return refuse(
                "same_site",
                "SameSite=None requires Secure (browsers drop it otherwise)",
            );
        }
        if !self.path.starts_with('/') || !self.path.bytes().all(is_attribute_char) {
            return refuse(
                "path",
                "must start with / and hold no ';', spaces or control characters",
            );
        }
        if let Some(domain) = &self.domain
            && (domain.is_empty() || !domain.bytes().all(is_attribute_char))
        {
            return refuse(
                "domain",
                "must be non-empty and hold no ';', spaces or control characters",
            );
        }
        if let TokenSource::Header {
            scheme: Some(scheme), ..
        } = &self.source
            && (scheme.is_empty() || !scheme.bytes().all(is_token_char))
        {
            return refuse(
                "token_source",
                "a header scheme must be a single non-empty token such as Bearer",
            );
        }
        if self.max_save_attempts == 0 {
            return refuse("max_save_attempts", "must be at least 1");
        }
        Ok(())
    }
}

/// RFC 7230 `tchar` (what RFC 6265 calls a token).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_attribute_char(b: u8) -> bool {
    b.is_ascii_graphic() && b != b';'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(config: SessionConfig) -> String {
        match config.validate() {
            Err(session_core::Error::Config(e)) => e.setting().to_owned(),
            other => panic!("expected a refused setting, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_valid_and_secure() {
        let c = SessionConfig::default();
        c.validate().expect("defaults are valid");
        assert!(c.secure && c.http_only && c.path == "/" && c.domain.is_none());
        assert_eq!(c.same_site, SameSite::Lax);
    }

    #[test]
    fn inconsistent_prefixes_and_attributes_are_refused() {
        assert_eq!(setting(SessionConfig::default().secure(false)), "secure");
        assert_eq!(setting(SessionConfig::default().path("/app")), "path");
        assert_eq!(
            setting(SessionConfig::default().domain(Some("example.com".into()))),
            "domain"
        );
        assert_eq!(
            setting(SessionConfig::default().cookie_name("__Secure-id").secure(false)),
            "secure"
        );
        assert_eq!(
            setting(
                SessionConfig::default()
                    .cookie_name("id")
                    .secure(false)
                    .same_site(SameSite::None)
            ),
            "same_site"
        );
        for bad in ["", "a b", "a;b", "a=b", "é"] {
            assert_eq!(
                setting(SessionConfig::default().cookie_name(bad)),
                "cookie_name",
                "{bad:?}"
            );
        }
        assert_eq!(setting(SessionConfig::default().cookie_name("id").path("app")), "path");
        assert_eq!(setting(SessionConfig::default().cookie_name("id").path("/a;b")), "path");
        assert_eq!(
            setting(SessionConfig::default().max_save_attempts(0)),
            "max_save_attempts"
        );
        let header = TokenSource::Header {
            name: AUTHORIZATION,
            scheme: Some("Bea rer".into()),
            response: HeaderName::from_static("x-session-token"),
        };
        assert_eq!(setting(SessionConfig::default().token_source(header)), "token_source");
        // Consistent non-default choices pass.
        SessionConfig::default()
            .cookie_name("sid")
            .secure(false)
            .path("/app")
            .domain(Some("example.com".into()))
            .validate()
            .expect("valid");
    }
}

//! Session identifiers: the browser's token ([`SessionId`]) and the only
//! thing a store ever sees ([`StoreKey`]).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::Error;

/// Length of a session id in bytes: 256 bits of entropy.
pub const SESSION_ID_BYTES: usize = 32;

/// Length of the text form of a session id: base64url of 32 bytes, no padding.
pub const SESSION_ID_LEN: usize = 43;

/// The token handed to the browser (for example in a cookie).
///
/// 256 bits from the operating system's CSPRNG, written as base64url without
/// padding (43 characters). It is a bearer credential: `Debug` and `Display`
/// never print it. Use [`SessionId::expose`] for the one place that must
/// (setting the cookie).
///
/// Stores never receive a `SessionId`: they get its [`StoreKey`].
///
/// ```
/// use session_core::SessionId;
///
/// let id = SessionId::generate().expect("the OS has a random source");
/// let cookie_value = id.expose().to_owned();
/// assert_eq!(cookie_value.len(), 43);
/// assert_eq!(format!("{id}"), "SessionId(<redacted>)");
///
/// let parsed: SessionId = cookie_value.parse()?;
/// assert_eq!(parsed.store_key(), id.store_key());
/// assert!("not-a-token".parse::<SessionId>().is_err());
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId {
    // Kept in text form: it is parsed once per request and exposed once per
    // response, and the bytes are only needed to derive the store key.
    text: String,
    bytes: [u8; SESSION_ID_BYTES],
}

impl SessionId {
    /// Makes a new id from the operating system's CSPRNG.
    ///
    /// Fails with [`Error::Backend`] only if the OS has no usable random
    /// source, which must never be papered over with a weaker one.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; SESSION_ID_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| Error::backend(format!("the OS random source failed: {e}"), false))?;
        Ok(Self::from_bytes(bytes))
    }

    /// Builds an id from raw bytes. Only for tests and tools that replay known
    /// ids; real ids come from [`SessionId::generate`].
    pub fn from_bytes(bytes: [u8; SESSION_ID_BYTES]) -> Self {
        Self {
            text: URL_SAFE_NO_PAD.encode(bytes),
            bytes,
        }
    }

    /// Parses the text form strictly: exactly 43 characters of the base64url
    /// alphabet, canonical encoding. Anything else is [`Error::InvalidId`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() != SESSION_ID_LEN {
            return Err(Error::InvalidId);
        }
        let mut bytes = [0u8; SESSION_ID_BYTES];
        // `decode_slice` rejects padding, other alphabets and non-canonical
        // trailing bits, so one id has exactly one accepted spelling.
        match URL_SAFE_NO_PAD.decode_slice(text.as_bytes(), &mut bytes) {
            Ok(SESSION_ID_BYTES) => Ok(Self {
                text: text.to_owned(),
                bytes,
            }),
            _ => Err(Error::InvalidId),
        }
    }

    /// The token in text form, to hand to the browser. This is the credential:
    /// do not log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The key under which stores keep this session: SHA-256 of the id bytes.
    pub fn store_key(&self) -> StoreKey {
        StoreKey(Sha256::digest(self.bytes).into())
    }
}

impl FromStr for SessionId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// The key a store keeps a session under: SHA-256 of the [`SessionId`] bytes.
///
/// A dump of any backend therefore holds no usable token, and a lookup by key
/// is not a timing oracle for the token. A `StoreKey` is not a credential: it
/// is safe to show (for example to name a session on a "your devices" page)
/// and to log, and its text form is 64 lowercase hex digits.
///
/// ```
/// use session_core::{SessionId, StoreKey};
///
/// let key = SessionId::generate()?.store_key();
/// let hex = key.to_hex();
/// assert_eq!(hex.parse::<StoreKey>()?, key);
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// Wraps 32 bytes, for stores that read keys back from their storage.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a key from a slice, as stores do with bytes from their server;
    /// any length other than 32 is [`Error::Corrupt`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::Corrupt(format!("a store key must be 32 bytes, got {}", bytes.len())))
    }

    /// The 32 bytes of the key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Parses 64 hex digits (either case); anything else is [`Error::InvalidId`].
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return Err(Error::InvalidId);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Ok(Self(out))
    }

    /// A short prefix for logs and messages: enough to correlate, useless to
    /// an attacker (the key itself is not a credential either).
    pub fn short(&self) -> String {
        let mut hex = self.to_hex();
        hex.truncate(12);
        hex
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Result<u8, Error> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::InvalidId),
    }
}

impl FromStr for StoreKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_hex(s)
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.short())
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_43_chars_and_distinct() {
        let a = SessionId::generate().expect("random source");
        let b = SessionId::generate().expect("random source");
        assert_eq!(a.expose().len(), SESSION_ID_LEN);
        assert_ne!(a, b);
        assert_ne!(a.store_key(), b.store_key());
    }

    #[test]
    fn parsing_rejects_every_other_shape() {
        let good = SessionId::from_bytes([7; 32]);
        let text = good.expose();
        assert_eq!(SessionId::parse(text).expect("round trip"), good);
        for bad in [
            String::new(),
            text[..42].to_owned(),
            format!("{text}A"),
            format!("{text}="),
            text.replace(&text[..1], "+"),
            format!("{}/", &text[..42]),
            format!("{}é", &text[..41]),
            " ".repeat(43),
        ] {
            assert!(
                matches!(SessionId::parse(&bad), Err(Error::InvalidId)),
                "{bad:?} was accepted"
            );
        }
        // The 43rd character carries 2 padding bits that must be zero.
        let mut noncanonical = text[..42].to_owned();
        noncanonical.push('B');
        if noncanonical != text {
            assert!(SessionId::parse(&noncanonical).is_err() || text.ends_with('A'));
        }
    }

    #[test]
    fn debug_and_display_redact_the_token() {
        let id = SessionId::from_bytes([1; 32]);
        assert!(!format!("{id:?}").contains(id.expose()));
        assert!(!format!("{id}").contains(id.expose()));
    }

    #[test]
    fn store_key_hex_round_trips() {
        let key = SessionId::from_bytes([9; 32]).store_key();
        assert_eq!(StoreKey::from_hex(&key.to_hex()).expect("hex"), key);
        assert_eq!(StoreKey::from_hex(&key.to_hex().to_uppercase()).expect("hex"), key);
        assert!(StoreKey::from_hex("zz").is_err());
        assert!(StoreKey::from_hex(&"g".repeat(64)).is_err());
        assert!(StoreKey::from_slice(&[0; 31]).is_err());
    }
}

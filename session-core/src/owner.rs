//! Which owners the contract accepts.
//!
//! An owner (for example a user id) names the sessions of one user in the
//! owner index. Every backend must store, list and delete by every owner this
//! module accepts, and the [`SessionManager`](crate::SessionManager) refuses
//! any other before it calls a store. Defining the set once keeps backends
//! alike: without it, PostgreSQL refused owners with a NUL byte or longer
//! than its index row limit (about 2.7 KB) while the others took them.

use crate::Error;

/// The longest owner accepted, in bytes of UTF-8: room for any user id,
/// e-mail address (at most 254) or URL-like subject, and small enough for
/// every backend's index (PostgreSQL's B-tree rows stop at about 2.7 KB).
pub const MAX_OWNER_LEN: usize = 1024;

/// Checks that `owner` is one the contract accepts: 1 to [`MAX_OWNER_LEN`]
/// bytes of UTF-8 without control characters (U+0000 to U+001F and U+007F to
/// U+009F; NUL cannot be stored in PostgreSQL text, and a tab or newline in a
/// user id is a bug). Everything else, including spaces, quotes, braces and
/// any non-ASCII text, is accepted.
///
/// Errors: [`Error::InvalidOwner`] saying what is wrong.
///
/// ```
/// use session_core::{Error, validate_owner};
///
/// assert!(validate_owner("user-42").is_ok());
/// assert!(validate_owner("ada@example.com").is_ok());
/// assert!(validate_owner("{tenant} Zoë 🦀").is_ok());
/// assert!(matches!(validate_owner(""), Err(Error::InvalidOwner(_))));
/// assert!(matches!(validate_owner("a\0b"), Err(Error::InvalidOwner(_))));
/// assert!(matches!(validate_owner(&"x".repeat(1025)), Err(Error::InvalidOwner(_))));
/// ```
pub fn validate_owner(owner: &str) -> Result<(), Error> {
    if owner.is_empty() {
        return Err(Error::InvalidOwner("the owner is empty".to_owned()));
    }
    if owner.len() > MAX_OWNER_LEN {
        return Err(Error::InvalidOwner(format!(
            "the owner is {} bytes long, over the limit of {MAX_OWNER_LEN}",
            owner.len()
        )));
    }
    if let Some((at, c)) = owner.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Error::InvalidOwner(format!(
            "the owner holds the control character U+{:04X} at byte {at}",
            u32::from(c)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_owner_is_accepted_and_one_byte_more_is_not() {
        assert!(validate_owner(&"a".repeat(MAX_OWNER_LEN)).is_ok());
        assert!(validate_owner(&"a".repeat(MAX_OWNER_LEN + 1)).is_err());
        // 256 four-byte characters are exactly the limit.
        assert!(validate_owner(&"🦀".repeat(MAX_OWNER_LEN / 4)).is_ok());
        assert!(validate_owner(&format!("{}a", "🦀".repeat(MAX_OWNER_LEN / 4))).is_err());
    }

    #[test]
    fn every_control_character_is_refused() {
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            assert!(validate_owner(&format!("a{c}b")).is_err(), "U+{:04X}", u32::from(c));
        }
        for ok in [" ", "'", "\"", "{", "}", "*", "?", ":", "\\", "é", "\u{a0}", "\u{200b}"] {
            assert!(validate_owner(ok).is_ok(), "{ok:?}");
        }
    }
}

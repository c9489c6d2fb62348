//! The session data codec: the application's key/value map as bytes.
//!
//! Format: one byte naming the format version, then the body. Version 1's
//! body is a postcard-encoded map from `String` to byte strings, each value
//! itself postcard-encoded from the application's type. Storing values as
//! separately encoded blobs means a typed [`SessionData::get`] decodes only
//! the value it asks for, and unknown keys survive a round trip untouched.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// The format version this build writes.
pub const FORMAT_V1: u8 = 1;

/// The application's data in one session: string keys, typed values.
///
/// ```
/// use session_core::SessionData;
///
/// let mut data = SessionData::new();
/// data.insert("user_id", &42_u64)?;
/// data.insert("cart", &vec!["apple".to_string()])?;
///
/// let bytes = data.encode();
/// let back = SessionData::decode(&bytes)?;
/// assert_eq!(back.get::<u64>("user_id")?, Some(42));
/// assert_eq!(back.get::<Vec<String>>("cart")?.unwrap_or_default(), ["apple"]);
///
/// // Stored bytes of an unknown format are an error, never a panic.
/// assert!(SessionData::decode(&[0xff, 1, 2]).is_err());
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionData {
    // BTreeMap: a deterministic encoding, so equal data gives equal bytes.
    values: BTreeMap<String, Vec<u8>>,
}

impl SessionData {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// Fails with [`Error::Serialize`] only if `value`'s `Serialize`
    /// implementation itself fails (postcard, for example, refuses
    /// sequences of unknown length); nothing is changed then.
    pub fn insert<T: Serialize + ?Sized>(&mut self, key: impl Into<String>, value: &T) -> Result<(), Error> {
        let key = key.into();
        let bytes = postcard::to_stdvec(value)
            .map_err(|e| Error::Serialize(format!("the value for {key:?} does not serialize: {e}")))?;
        self.values.insert(key, bytes);
        Ok(())
    }

    /// Reads the value under `key` as a `T`: `Ok(None)` if absent,
    /// [`Error::Corrupt`] if the stored bytes are not a `T`.
    ///
    /// The format is not self-describing: reading a value as a different type
    /// than it was written with is an error or a wrong value, never a panic.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.values.get(key) {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(bytes).map(Some).map_err(|e| {
                Error::Corrupt(format!(
                    "session value {key:?} does not decode as the requested type: {e}"
                ))
            }),
        }
    }

    /// The stored bytes of the value under `key`, exactly as the map keeps
    /// them (the value's own postcard encoding), without decoding them.
    ///
    /// For code that moves values between two copies of a session without
    /// knowing their types: the HTTP layer records the raw bytes a request
    /// wrote so that it can re-apply them onto a fresher copy after a
    /// version conflict.
    ///
    /// ```
    /// use session_core::SessionData;
    ///
    /// let mut a = SessionData::new();
    /// a.insert("cart", &vec![3u32, 4])?;
    /// let raw = a.get_raw("cart").expect("present").to_vec();
    ///
    /// let mut b = SessionData::new();
    /// b.insert_raw("cart", raw);
    /// assert_eq!(b.get::<Vec<u32>>("cart")?, Some(vec![3, 4]));
    /// assert_eq!(a.get_raw("missing"), None);
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn get_raw(&self, key: &str) -> Option<&[u8]> {
        self.values.get(key).map(Vec::as_slice)
    }

    /// Stores `bytes` under `key` as they are, replacing any previous value:
    /// the counterpart of [`get_raw`](Self::get_raw). The bytes should be a
    /// value's encoding taken from `get_raw`; anything else makes a later
    /// typed [`get`](Self::get) of `key` fail with [`Error::Corrupt`] (never
    /// panic), as any foreign bytes do.
    pub fn insert_raw(&mut self, key: impl Into<String>, bytes: Vec<u8>) {
        self.values.insert(key.into(), bytes);
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        self.values.remove(key).is_some()
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// The exact length of [`encode`](Self::encode)'s output, computed
    /// without encoding: the manager checks
    /// [`Config::max_data_bytes`](crate::Config::max_data_bytes) with it
    /// before it copies a possibly huge map into one buffer.
    ///
    /// ```
    /// use session_core::SessionData;
    ///
    /// let mut data = SessionData::new();
    /// data.insert("cart", &vec![7u8; 300])?;
    /// assert_eq!(data.encoded_len(), data.encode().len());
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn encoded_len(&self) -> usize {
        // Postcard writes the map's length, then per entry the key and the
        // value, each as a varint length followed by its bytes.
        let entries: usize = self
            .values
            .iter()
            .map(|(k, v)| varint_len(k.len()) + k.len() + varint_len(v.len()) + v.len())
            .sum();
        1 + varint_len(self.values.len()) + entries
    }

    /// Encodes with the current format version.
    pub fn encode(&self) -> Bytes {
        let mut out = vec![FORMAT_V1];
        // Writing a map of strings and byte vectors into a Vec cannot fail.
        match postcard::to_extend(&self.values, out) {
            Ok(v) => out = v,
            Err(_) => unreachable!("postcard encoding of a String -> Vec<u8> map into a Vec cannot fail"),
        }
        Bytes::from(out)
    }

    /// Decodes bytes written by [`SessionData::encode`] of this or an earlier
    /// format version. Empty input is an empty map (a store may hold a record
    /// whose data was never written). Anything undecodable, an unknown format
    /// version or trailing bytes give [`Error::Corrupt`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let Some((&format, body)) = bytes.split_first() else {
            return Ok(Self::default());
        };
        if format != FORMAT_V1 {
            return Err(Error::Corrupt(format!("unknown session data format version {format}")));
        }
        let (values, rest) = postcard::take_from_bytes::<BTreeMap<String, Vec<u8>>>(body)
            .map_err(|e| Error::Corrupt(format!("session data does not decode: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::Corrupt(format!(
                "{} trailing bytes after session data",
                rest.len()
            )));
        }
        Ok(Self { values })
    }
}

/// How many bytes postcard's varint (LEB128, 7 bits a byte) takes for `n`.
fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_is_the_length_of_the_encoding() {
        let mut d = SessionData::new();
        assert_eq!(d.encoded_len(), d.encode().len());
        // Lengths on both sides of every varint byte boundary.
        for (i, n) in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000]
            .into_iter()
            .enumerate()
        {
            d.insert("k".repeat(n.min(200) + i), &vec![1u8; n]).expect("encode");
            assert_eq!(d.encoded_len(), d.encode().len(), "after a value of {n} bytes");
        }
        for n in 0..200 {
            d.insert(format!("key{n}"), &n).expect("encode");
        }
        assert_eq!(d.encoded_len(), d.encode().len());
    }

    #[test]
    fn round_trip_keeps_every_value() {
        let mut d = SessionData::new();
        d.insert("a", &1u8).expect("encode");
        d.insert("b", "text").expect("encode");
        d.insert("c", &(1u64, -5i32, Some(2.5f64))).expect("encode");
        let back = SessionData::decode(&d.encode()).expect("decode");
        assert_eq!(back, d);
        assert_eq!(back.get::<String>("b").expect("typed"), Some("text".to_owned()));
        assert_eq!(back.get::<u8>("missing").expect("absent"), None);
    }

    #[test]
    fn garbage_never_panics() {
        let valid = {
            let mut d = SessionData::new();
            d.insert("key", &vec![1u32, 2, 3]).expect("encode");
            d.encode()
        };
        // Every truncation and every single-byte flip decodes or errors.
        for cut in 0..valid.len() {
            let _ = SessionData::decode(&valid[..cut]);
        }
        for i in 0..valid.len() {
            for bit in 0..8 {
                let mut b = valid.to_vec();
                b[i] ^= 1 << bit;
                let _ = SessionData::decode(&b);
            }
        }
        assert!(matches!(SessionData::decode(&[2]), Err(Error::Corrupt(_))));
        assert!(matches!(
            SessionData::decode(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::Corrupt(_))
        ));
        let mut trailing = valid.to_vec();
        trailing.push(0);
        assert!(matches!(SessionData::decode(&trailing), Err(Error::Corrupt(_))));
    }

    #[test]
    fn a_value_that_cannot_serialize_is_a_serialize_error_not_corrupt() {
        /// Serializes as a sequence of unknown length, which postcard refuses.
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq as _;
                s.serialize_seq(None)?.end()
            }
        }
        let mut d = SessionData::new();
        assert!(matches!(d.insert("u", &Unsized), Err(Error::Serialize(_))));
        assert!(d.is_empty(), "a failed insert changes nothing");
    }

    #[test]
    fn raw_bytes_move_a_value_between_copies_unchanged() {
        let mut a = SessionData::new();
        a.insert("n", &41_u64).expect("encode");
        a.insert("s", "text").expect("encode");
        let mut b = SessionData::new();
        b.insert("n", &0_u64).expect("encode");
        for key in ["n", "s"] {
            b.insert_raw(key, a.get_raw(key).expect("present").to_vec());
        }
        assert_eq!(a, b);
        assert_eq!(b.get::<u64>("n").expect("typed"), Some(41));
        // Foreign raw bytes are a typed error later, never a panic.
        b.insert_raw("bad", vec![0xff; 11]);
        assert!(matches!(b.get::<u64>("bad"), Err(Error::Corrupt(_))));
        assert_eq!(SessionData::decode(&b.encode()).expect("round trip"), b);
    }

    #[test]
    fn wrong_type_is_an_error_not_a_panic() {
        let mut d = SessionData::new();
        d.insert("s", "hi").expect("encode");
        // "hi" is 3 bytes; four integers need at least 4.
        assert!(matches!(d.get::<(u64, u64, u64, u64)>("s"), Err(Error::Corrupt(_))));
    }
}

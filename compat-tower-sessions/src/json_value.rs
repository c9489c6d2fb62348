//! A compact, self-describing binary encoding of tower's session data (a
//! map of `serde_json::Value`s), exact for every value.
//!
//! Why not JSON text: a session is decoded on every request and encoded on
//! every write, and text costs several times more each way (escaping,
//! number formatting) than copying tagged bytes. Why not postcard: it is not
//! self-describing, so it cannot decode a `Value`.
//!
//! ```text
//! value  = tag payload
//! tag    0 null | 1 false | 2 true
//!        3 u64  | 4 i64   | 5 f64        payload: 8 bytes little-endian
//!        6 number as text (one that fits none of the three exactly)
//!        7 string                         payload: text
//!        8 array  payload: count, then count values
//!        9 object payload: count, then count (text, value) pairs
//! text   = length (u32 LE), UTF-8 bytes
//! count  = u32 LE
//! map    = count, then count (text, value) pairs    (the top level)
//! ```

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

/// Deepest nesting decoded (as serde_json's own limit): a damaged or hostile
/// record cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 128;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const U64: u8 = 3;
const I64: u8 = 4;
const F64: u8 = 5;
const NUMBER_TEXT: u8 = 6;
const STRING: u8 = 7;
const ARRAY: u8 = 8;
const OBJECT: u8 = 9;

/// Why bytes could not be encoded or decoded; the caller adds context.
pub(crate) type Problem = String;

/// Appends the encoding of `map` to `out`.
pub(crate) fn encode_map(map: &HashMap<String, Value>, out: &mut Vec<u8>) -> Result<(), Problem> {
    count(map.len(), out)?;
    for (key, value) in map {
        text(key, out)?;
        encode(value, out)?;
    }
    Ok(())
}

/// Decodes a whole map; trailing bytes are an error.
pub(crate) fn decode_map(bytes: &[u8]) -> Result<HashMap<String, Value>, Problem> {
    let mut reader = Reader { bytes };
    let n = reader.count()?;
    let mut map = HashMap::with_capacity(reader.capacity_for(n));
    for _ in 0..n {
        let key = reader.text()?;
        map.insert(key, reader.value(1)?);
    }
    if !reader.bytes.is_empty() {
        return Err(format!("{} bytes after the data", reader.bytes.len()));
    }
    Ok(map)
}

/// The exact length [`encode_map`] writes for `map`, so the caller can
/// allocate once: no regrowth, and a buffer whose capacity is its length
/// becomes a `Bytes` without a second allocation.
pub(crate) fn encoded_len_map(map: &HashMap<String, Value>) -> usize {
    map.iter()
        .fold(4, |len, (key, value)| len + 4 + key.len() + encoded_len(value))
}

// As `encode`, bounded by the value's own depth.
fn encoded_len(value: &Value) -> usize {
    1 + match value {
        Value::Null | Value::Bool(_) => 0,
        Value::Number(n) => number_len(n),
        Value::String(s) => 4 + s.len(),
        Value::Array(items) => items.iter().fold(4, |len, item| len + encoded_len(item)),
        Value::Object(map) => map
            .iter()
            .fold(4, |len, (key, value)| len + 4 + key.len() + encoded_len(value)),
    }
}

fn count(n: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
    let n = u32::try_from(n).map_err(|_| format!("{n} entries, more than a record holds"))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn text(s: &str, out: &mut Vec<u8>) -> Result<(), Problem> {
    count(s.len(), out)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

// Recursion is bounded by the value's own depth: a `Value` the application
// built in memory, which serde_json itself encodes the same way.
fn encode(value: &Value, out: &mut Vec<u8>) -> Result<(), Problem> {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => number(n, out),
        Value::String(s) => {
            out.push(STRING);
            text(s, out)?;
        }
        Value::Array(items) => {
            out.push(ARRAY);
            count(items.len(), out)?;
            for item in items {
                encode(item, out)?;
            }
        }
        Value::Object(map) => {
            out.push(OBJECT);
            count(map.len(), out)?;
            for (key, value) in map {
                text(key, out)?;
                encode(value, out)?;
            }
        }
    }
    Ok(())
}

/// What `number` writes after the tag.
fn number_len(n: &Number) -> usize {
    match exact_binary(n) {
        Some(_) => 8,
        None => 4 + n.to_string().len(),
    }
}

/// A number's tag and 8 bytes, when u64, i64 or f64 gives it back equal.
fn exact_binary(n: &Number) -> Option<(u8, [u8; 8])> {
    if let Some(u) = n.as_u64().filter(|&u| Number::from(u) == *n) {
        Some((U64, u.to_le_bytes()))
    } else if let Some(i) = n.as_i64().filter(|&i| Number::from(i) == *n) {
        Some((I64, i.to_le_bytes()))
    } else {
        n.as_f64()
            .filter(|&f| Number::from_f64(f).as_ref() == Some(n))
            .map(|f| (F64, f.to_le_bytes()))
    }
}

/// The exact form of a number: binary when one of u64, i64, f64 gives it
/// back equal, its text otherwise (serde_json's `arbitrary_precision`
/// numbers, which another crate of the build may switch on).
fn number(n: &Number, out: &mut Vec<u8>) {
    if let Some((tag, bytes)) = exact_binary(n) {
        out.push(tag);
        out.extend_from_slice(&bytes);
    } else {
        out.push(NUMBER_TEXT);
        let s = n.to_string();
        // A number's text is short; `count` cannot fail on it.
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        let Some((head, rest)) = self.bytes.split_at_checked(n) else {
            return Err(format!("{n} bytes expected, {} left", self.bytes.len()));
        };
        self.bytes = rest;
        Ok(head)
    }

    fn eight(&mut self) -> Result<[u8; 8], Problem> {
        let bytes = self.take(8)?;
        bytes.try_into().map_err(|_| "8 bytes expected".to_owned())
    }

    fn count(&mut self) -> Result<usize, Problem> {
        let bytes: [u8; 4] = self.take(4)?.try_into().map_err(|_| "4 bytes expected".to_owned())?;
        usize::try_from(u32::from_le_bytes(bytes)).map_err(|_| "a count beyond this machine".to_owned())
    }

    /// Room for `n` entries, but never more than the bytes left could hold
    /// (each takes at least one): a damaged count cannot allocate gigabytes.
    fn capacity_for(&self, n: usize) -> usize {
        n.min(self.bytes.len())
    }

    fn text(&mut self) -> Result<String, Problem> {
        let n = self.count()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| format!("text: {e}"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, Problem> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let [tag] = self.take(1)? else {
            return Err("a tag expected".to_owned());
        };
        Ok(match *tag {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            U64 => Value::from(u64::from_le_bytes(self.eight()?)),
            I64 => Value::from(i64::from_le_bytes(self.eight()?)),
            F64 => {
                let f = f64::from_le_bytes(self.eight()?);
                Value::Number(Number::from_f64(f).ok_or_else(|| format!("{f} is no JSON number"))?)
            }
            NUMBER_TEXT => {
                let s = self.text()?;
                Value::Number(s.parse().map_err(|e| format!("number {s:?}: {e}"))?)
            }
            STRING => Value::String(self.text()?),
            ARRAY => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(self.capacity_for(n));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            OBJECT => {
                let n = self.count()?;
                let mut map = Map::new();
                for _ in 0..n {
                    let key = self.text()?;
                    map.insert(key, self.value(depth + 1)?);
                }
                Value::Object(map)
            }
            other => return Err(format!("unknown tag {other}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(value: Value) {
        let map = HashMap::from([("k".to_owned(), value)]);
        let mut out = Vec::new();
        encode_map(&map, &mut out).expect("encodes");
        assert_eq!(encoded_len_map(&map), out.len(), "the length computed ahead");
        assert_eq!(decode_map(&out).expect("decodes"), map);
    }

    #[test]
    fn every_kind_of_value_comes_back_equal() {
        round_trip(json!(null));
        round_trip(json!([true, false]));
        round_trip(json!([
            0,
            1,
            u64::MAX,
            -1,
            i64::MIN,
            1.0,
            -0.5,
            1e300,
            f64::MIN_POSITIVE
        ]));
        round_trip(json!("text with \"quotes\", \\ and \u{1F600}"));
        round_trip(json!({"nested": {"deeper": [[], {}, ""]}, "": 0}));
        round_trip(json!(
            serde_json::from_str::<Value>("12345678901234567890123").expect("a big number")
        ));
    }

    #[test]
    fn nesting_is_bounded_on_decode() {
        let mut deep = Value::Null;
        for _ in 0..MAX_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        // MAX_DEPTH arrays around a null: the null is at depth MAX_DEPTH + 1.
        let map = HashMap::from([("k".to_owned(), deep)]);
        let mut out = Vec::new();
        encode_map(&map, &mut out).expect("encodes");
        assert!(decode_map(&out).is_err());
        // Arrays that claim to go on for ever.
        let mut hostile = vec![1, 0, 0, 0, 1, 0, 0, 0, b'k'];
        for _ in 0..100_000 {
            hostile.extend_from_slice(&[ARRAY, 1, 0, 0, 0]);
        }
        assert!(decode_map(&hostile).is_err());
    }

    #[test]
    fn damaged_counts_lengths_tags_and_text_are_refused() {
        let huge_count = [0xff, 0xff, 0xff, 0xff];
        let mut huge_array = vec![1, 0, 0, 0, 1, 0, 0, 0, b'k', ARRAY];
        huge_array.extend_from_slice(&huge_count);
        for bad in [
            &huge_count[..],
            &[1, 0, 0, 0, 1, 0, 0, 0, b'k'],
            &[1, 0, 0, 0, 1, 0, 0, 0, b'k', 42],
            &[1, 0, 0, 0, 1, 0, 0, 0, 0xff, NULL],
            &[1, 0, 0, 0, 1, 0, 0, 0, b'k', F64, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f],
            &[1, 0, 0, 0, 1, 0, 0, 0, b'k', NUMBER_TEXT, 1, 0, 0, 0, b'x'],
            &[0, 0, 0, 0, 0],
            &huge_array,
        ] {
            assert!(decode_map(bad).is_err(), "{bad:?} was accepted");
        }
    }
}

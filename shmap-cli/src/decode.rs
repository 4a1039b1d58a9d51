//! Decoding keys and values from their bytes and the layout description the header stores
//! (`{site:u32@0;sensor:u32@4}`, `[u64;4]`, `FixedString<16>`), so that the command can print
//! `{site: 1, sensor: 4}` instead of hex without knowing the Rust types.
//!
//! The grammar is what `ShmLayout::LAYOUT_DESC` builds (see `shmap::layout`):
//!
//! ```text
//! type   = prim | "()" | "[" type ";" count "]" | "{" [field {";" field}] "}"
//!        | "FixedString<" n ">" | "BitsInteger<" bits ">" | "enum " int "{" names "}"
//! field  = name ":" type "@" offset
//! prim   = u8 | u16 | u32 | u64 | u128 | usize | i8 | … | isize | f32 | f64
//! ```
//!
//! Anything else (a hand-written description, one cut at the header's 192 bytes, one whose
//! sizes disagree with the header's) is left undecoded: the caller prints hex.

use std::fmt;

/// A type, as its description says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Shape {
    Unsigned(usize),
    Signed(usize),
    Float(usize),
    Unit,
    Array(Box<Shape>, usize),
    Struct(Vec<(String, Shape, usize)>),
    FixedString(usize),
    BitsInteger,
    /// A fieldless enum over an integer of this many bytes: printed as its integer, since the
    /// description names the variants but not their values.
    Enum(usize, bool),
}

impl Shape {
    /// Parses a whole description.
    pub(crate) fn parse(desc: &str) -> Option<Shape> {
        let (shape, rest) = parse(desc)?;
        rest.is_empty().then_some(shape)
    }

    /// The type's size in bytes.
    pub(crate) fn size(&self) -> Option<usize> {
        Some(match self {
            Shape::Unsigned(n) | Shape::Signed(n) | Shape::Float(n) | Shape::Enum(n, _) => *n,
            Shape::Unit => 0,
            Shape::Array(element, count) => element.size()?.checked_mul(*count)?,
            Shape::Struct(fields) => {
                let mut end = 0;
                for (_, shape, offset) in fields {
                    end = end.max(offset.checked_add(shape.size()?)?);
                }
                end
            }
            Shape::FixedString(n) => n.checked_add(2)?,
            Shape::BitsInteger => 8,
        })
    }

    /// Decodes `bytes`, which must be exactly the type's size.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Option<Value> {
        if Some(bytes.len()) != self.size() {
            return None;
        }
        Some(match self {
            Shape::Unsigned(_) | Shape::BitsInteger | Shape::Enum(_, false) => {
                Value::Unsigned(unsigned(bytes))
            }
            Shape::Signed(_) | Shape::Enum(_, true) => Value::Signed(signed(bytes)),
            Shape::Float(4) => Value::Float(f64::from(f32::from_ne_bytes(bytes.try_into().ok()?))),
            Shape::Float(_) => Value::Float(f64::from_ne_bytes(bytes.try_into().ok()?)),
            Shape::Unit => Value::Unit,
            Shape::Array(element, _) => {
                let size = element.size()?;
                if size == 0 {
                    return Some(Value::Array(Vec::new()));
                }
                Value::Array(
                    bytes.chunks_exact(size).map(|b| element.decode(b)).collect::<Option<_>>()?,
                )
            }
            Shape::Struct(fields) => Value::Struct(
                fields
                    .iter()
                    .map(|(name, shape, offset)| {
                        let end = offset + shape.size()?;
                        Some((name.clone(), shape.decode(bytes.get(*offset..end)?)?))
                    })
                    .collect::<Option<_>>()?,
            ),
            Shape::FixedString(n) => {
                let len = usize::from(u16::from_le_bytes([bytes[0], bytes[1]]));
                match (len <= *n).then(|| std::str::from_utf8(&bytes[2..2 + len])) {
                    Some(Ok(s)) => Value::Str(s.to_owned()),
                    _ => Value::Bytes(bytes.to_vec()),
                }
            }
        })
    }
}

fn unsigned(bytes: &[u8]) -> u128 {
    let mut wide = [0u8; 16];
    if cfg!(target_endian = "little") {
        wide[..bytes.len()].copy_from_slice(bytes);
        u128::from_le_bytes(wide)
    } else {
        wide[16 - bytes.len()..].copy_from_slice(bytes);
        u128::from_be_bytes(wide)
    }
}

fn signed(bytes: &[u8]) -> i128 {
    let bits = bytes.len() as u32 * 8;
    if bits == 0 {
        return 0;
    }
    // Sign-extend from the type's width.
    (unsigned(bytes) << (128 - bits)) as i128 >> (128 - bits)
}

/// Parses one type at the start of `s`; returns it and the rest.
fn parse(s: &str) -> Option<(Shape, &str)> {
    if let Some(rest) = s.strip_prefix("()") {
        return Some((Shape::Unit, rest));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (element, rest) = parse(rest)?;
        let rest = rest.strip_prefix(';')?;
        let (count, rest) = number(rest)?;
        return Some((Shape::Array(Box::new(element), count), rest.strip_prefix(']')?));
    }
    if let Some(mut rest) = s.strip_prefix('{') {
        let mut fields = Vec::new();
        if let Some(rest) = rest.strip_prefix('}') {
            return Some((Shape::Struct(fields), rest));
        }
        loop {
            let colon = rest.find(':')?;
            let name = &rest[..colon];
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return None;
            }
            let (shape, after) = parse(&rest[colon + 1..])?;
            let (offset, after) = number(after.strip_prefix('@')?)?;
            fields.push((name.to_owned(), shape, offset));
            if let Some(after) = after.strip_prefix(';') {
                rest = after;
            } else {
                return Some((Shape::Struct(fields), after.strip_prefix('}')?));
            }
        }
    }
    for (prefix, make) in [
        ("FixedString<", Shape::FixedString as fn(usize) -> Shape),
        ("BitsInteger<", |_| Shape::BitsInteger),
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            let (n, rest) = number(rest)?;
            return Some((make(n), rest.strip_prefix('>')?));
        }
    }
    if let Some(rest) = s.strip_prefix("enum ") {
        let (int, rest) = primitive(rest)?;
        let (Shape::Unsigned(n) | Shape::Signed(n)) = int else { return None };
        let signed = matches!(int, Shape::Signed(_));
        let rest = rest.strip_prefix('{')?;
        let close = rest.find('}')?;
        return Some((Shape::Enum(n, signed), &rest[close + 1..]));
    }
    primitive(s)
}

fn primitive(s: &str) -> Option<(Shape, &str)> {
    let end = s.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(s.len());
    let word = &s[..end];
    let width = |digits: &str| match digits {
        "size" => Some(size_of::<usize>()),
        d => d.parse::<usize>().ok().filter(|b| [8, 16, 32, 64, 128].contains(b)).map(|b| b / 8),
    };
    let shape = match word.split_at_checked(1)? {
        ("u", digits) => Shape::Unsigned(width(digits)?),
        ("i", digits) => Shape::Signed(width(digits)?),
        ("f", "32") => Shape::Float(4),
        ("f", "64") => Shape::Float(8),
        _ => return None,
    };
    Some((shape, &s[end..]))
}

fn number(s: &str) -> Option<(usize, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// A decoded key or value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Unsigned(u128),
    Signed(i128),
    Float(f64),
    Unit,
    Str(String),
    /// A `FixedString` whose length or UTF-8 is invalid: its raw bytes.
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Struct(Vec<(String, Value)>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unsigned(n) => write!(f, "{n}"),
            Value::Signed(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Unit => f.write_str("()"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "<invalid FixedString {}>", hex(b)),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Struct(fields) => {
                f.write_str("{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            // JSON numbers beyond 64 bits lose precision in most readers: strings.
            Value::Unsigned(n) => match u64::try_from(*n) {
                Ok(n) => s.serialize_u64(n),
                Err(_) => s.serialize_str(&n.to_string()),
            },
            Value::Signed(n) => match i64::try_from(*n) {
                Ok(n) => s.serialize_i64(n),
                Err(_) => s.serialize_str(&n.to_string()),
            },
            Value::Float(x) => s.serialize_f64(*x), // NaN and infinities become null
            Value::Unit => s.serialize_unit(),
            Value::Str(text) => s.serialize_str(text),
            Value::Bytes(b) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("invalid_fixed_string_hex", &hex(b).replace(' ', ""))?;
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Struct(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    }
}

/// `02 00 ff`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// Decodes `bytes` as the type `layout` describes, if it can be: the description parses, is
/// whole, and its size is the header's.
pub(crate) fn decode(layout: &shmap::TypeLayout, bytes: &[u8]) -> Option<Value> {
    if layout.desc.is_truncated() {
        return None;
    }
    let shape = Shape::parse(layout.desc.as_str())?;
    if shape.size()? != layout.size as usize {
        return None;
    }
    shape.decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmap::{BitsInteger, FixedString, ShmKey, ShmLayout, ShmValue};

    fn bytes_of<T: ShmLayout>(value: &T) -> &[u8] {
        // SAFETY: a `ShmLayout` type has no padding (the trait's contract), so all
        // `size_of::<T>()` bytes of the value are initialised, and it has no interior
        // mutability, so they do not change while borrowed.
        unsafe { std::slice::from_raw_parts(std::ptr::from_ref(value).cast(), size_of::<T>()) }
    }

    fn round_trip<T: ShmLayout>(value: &T) -> String {
        let layout = shmap::TypeLayout::of::<T>();
        decode(&layout, bytes_of(value)).map_or_else(|| "<undecoded>".into(), |v| v.to_string())
    }

    #[derive(Clone, Copy, ShmKey)]
    #[repr(C)]
    struct Sensor {
        site: u32,
        sensor: u32,
    }

    #[derive(Clone, Copy, ShmValue)]
    #[repr(C)]
    struct Reading {
        at: Sensor,
        celsius: f32,
        delta: i16,
        flags: [u8; 2],
        name: FixedString<6>,
        bits: BitsInteger<40>,
    }

    #[test]
    fn derived_structs_decode_by_field() {
        assert_eq!(round_trip(&Sensor { site: 1, sensor: 4 }), "{site: 1, sensor: 4}");
        let r = Reading {
            at: Sensor { site: 7, sensor: 9 },
            celsius: 21.5,
            delta: -3,
            flags: [1, 255],
            name: FixedString::try_from("oven").unwrap(),
            bits: BitsInteger::new(1 << 39).unwrap(),
        };
        assert_eq!(
            round_trip(&r),
            "{at: {site: 7, sensor: 9}, celsius: 21.5, delta: -3, flags: [1, 255], \
             name: \"oven\", bits: 549755813888}"
        );
        let layout = shmap::TypeLayout::of::<Reading>();
        let json = serde_json::to_string(&decode(&layout, bytes_of(&r))).unwrap();
        assert_eq!(
            json,
            r#"{"at":{"site":7,"sensor":9},"celsius":21.5,"delta":-3,"flags":[1,255],"name":"oven","bits":549755813888}"#
        );
    }

    #[test]
    fn primitives_and_arrays() {
        assert_eq!(round_trip(&u64::MAX), "18446744073709551615");
        assert_eq!(round_trip(&i8::MIN), "-128");
        assert_eq!(round_trip(&(-2i128)), "-2");
        assert_eq!(round_trip(&u128::MAX), u128::MAX.to_string());
        assert_eq!(round_trip(&[[1u16, 2], [3, 4]]), "[[1, 2], [3, 4]]");
        assert_eq!(round_trip(&0.1f64), "0.1");
        assert_eq!(round_trip(&()), "()");
        let wide = serde_json::to_string(&Value::Unsigned(u128::MAX)).unwrap();
        assert_eq!(wide, format!("\"{}\"", u128::MAX), "beyond 64 bits: a string");
    }

    #[test]
    fn what_cannot_be_decoded_is_left_to_hex() {
        assert_eq!(Shape::parse("{a:u32@0"), None, "cut short");
        assert_eq!(Shape::parse("Foo"), None, "a hand-written description");
        assert_eq!(Shape::parse("u7"), None);
        let mut bad = bytes_of(&FixedString::<4>::try_from("ab").unwrap()).to_vec();
        bad[0] = 9; // length 9 > 4
        let layout = shmap::TypeLayout::of::<FixedString<4>>();
        let text = decode(&layout, &bad).unwrap().to_string();
        assert_eq!(text, "<invalid FixedString 09 00 61 62 00 00>");
        // A description whose size disagrees with the header's.
        let mut layout = shmap::TypeLayout::of::<u64>();
        layout.size = 4;
        assert_eq!(decode(&layout, &[0; 4]), None);
    }

    #[test]
    fn enums_decode_as_their_integer() {
        assert_eq!(Shape::parse("enum u8{A;B}"), Some(Shape::Enum(1, false)));
        let s = Shape::parse("{e:enum i16{X;Y}@0;n:u16@2}").unwrap();
        assert_eq!(s.decode(&[0xff, 0xff, 5, 0]).unwrap().to_string(), "{e: -1, n: 5}");
    }
}

//! The compact form of a trace step: what the trace hash is computed over.
//!
//! Every step (a world event, an executor input or command, the header) is written with serde
//! twice at most: always in this compact form, into a reused buffer that the hash reads and the
//! ring of recent steps keeps; and as a JSON line only when a trace file is written. The compact
//! form is self-describing (a tag byte per value), so [`to_json`] turns a kept step back into the
//! very line `serde_json` writes for the same value: the violation report's recent lines read as
//! the trace file does, without serialising JSON on every step.
//!
//! The form follows serde_json's data model exactly: an `Option` is its value or null, a unit
//! variant its name, any other variant a one-entry map from its name, a newtype struct its
//! inner value, map keys are written as values and quoted when printed (as serde_json quotes
//! integer and boolean keys).

use std::fmt;

use serde::ser::{self, Serialize};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UNSIGNED: u8 = 3;
const SIGNED: u8 = 4;
const F32: u8 = 5;
const F64: u8 = 6;
const STR: u8 = 7;
const SEQ: u8 = 8;
const MAP: u8 = 9;
const END: u8 = 10;

/// A value serde could not write in this form (a `Serialize` impl's own error, or 128-bit
/// integers, which no trace step holds).
#[derive(Debug)]
pub(crate) struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Appends the compact form of `value` to `out`.
///
/// # Errors
/// What the value's `Serialize` impl reports; `out` then holds a partial form.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    value.serialize(&mut Encoder { out })
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        // Truncation intended: the low seven bits with the continuation bit.
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn str(&mut self, s: &str) {
        self.out.push(STR);
        varint(self.out, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    fn signed(&mut self, v: i64) {
        self.out.push(SIGNED);
        // Zig-zag: small magnitudes of either sign take few bytes.
        varint(self.out, ((v << 1) ^ (v >> 63)) as u64);
    }

    fn unsigned(&mut self, v: u64) {
        self.out.push(UNSIGNED);
        varint(self.out, v);
    }

    /// Opens a one-entry map from a variant's name, as serde_json writes a variant with data.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(MAP);
        self.str(variant);
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Encoder<'b> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = Compound<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.out.push(if v { TRUE } else { FALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.signed(v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.signed(v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.signed(v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.signed(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.unsigned(v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.unsigned(v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.unsigned(v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.unsigned(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        self.out.push(F32);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        self.out.push(F64);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsupported> {
        // serde_json writes bytes as an array of numbers.
        self.out.push(SEQ);
        for b in v {
            self.unsigned((*b).into());
        }
        self.out.push(END);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.out.push(NULL);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.out.push(NULL);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.out.push(NULL);
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.str(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.open_variant(variant);
        value.serialize(&mut *self)?;
        self.out.push(END);
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, Unsupported> {
        self.out.push(SEQ);
        Ok(Compound { enc: self, ends: 1 })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'b>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, Unsupported> {
        self.open_variant(variant);
        self.out.push(SEQ);
        Ok(Compound { enc: self, ends: 2 })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, Unsupported> {
        self.out.push(MAP);
        Ok(Compound { enc: self, ends: 1 })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Unsupported> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, Unsupported> {
        self.open_variant(variant);
        self.out.push(MAP);
        Ok(Compound { enc: self, ends: 2 })
    }
}

/// An open sequence or map; `ends` is how many levels its end closes (two for a variant's data
/// inside its one-entry map).
struct Compound<'a, 'b> {
    enc: &'a mut Encoder<'b>,
    ends: usize,
}

impl Compound<'_, '_> {
    fn end(self) {
        for _ in 0..self.ends {
            self.enc.out.push(END);
        }
    }
}

macro_rules! elements {
    ($($tr:ident :: $method:ident),*) => {$(
        impl ser::$tr for Compound<'_, '_> {
            type Ok = ();
            type Error = Unsupported;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
                value.serialize(&mut *self.enc)
            }
            fn end(self) -> Result<(), Unsupported> {
                Compound::end(self);
                Ok(())
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        key.serialize(&mut *self.enc)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self);
        Ok(())
    }
}

macro_rules! fields {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Compound<'_, '_> {
            type Ok = ();
            type Error = Unsupported;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Unsupported> {
                self.enc.str(key);
                value.serialize(&mut *self.enc)
            }
            fn end(self) -> Result<(), Unsupported> {
                Compound::end(self);
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// The JSON line serde_json writes for the value whose compact form is `bytes` (what
/// [`encode`] wrote). A form this module did not write prints as far as it reads, then `…`.
pub(crate) fn to_json(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut reader = Reader { bytes, at: 0 };
    if reader.value(&mut out, false).is_none() {
        out.push('…');
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.at.checked_add(N)?;
        let b = self.bytes.get(self.at..end)?.try_into().ok()?;
        self.at = end;
        Some(b)
    }

    fn peek_end(&mut self) -> bool {
        if self.bytes.get(self.at) == Some(&END) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Prints one value; `as_key` quotes what serde_json quotes in key position.
    fn value(&mut self, out: &mut String, as_key: bool) -> Option<()> {
        let quote = |out: &mut String, text: &str| {
            if as_key {
                out.push('"');
                out.push_str(text);
                out.push('"');
            } else {
                out.push_str(text);
            }
        };
        match self.byte()? {
            NULL => out.push_str("null"),
            FALSE => quote(out, "false"),
            TRUE => quote(out, "true"),
            UNSIGNED => quote(out, &self.varint()?.to_string()),
            SIGNED => {
                let z = self.varint()?;
                // Undo the zig-zag; the casts reinterpret bits.
                let v = ((z >> 1) as i64) ^ -((z & 1) as i64);
                quote(out, &v.to_string());
            }
            F32 => {
                let v = f32::from_le_bytes(self.take()?);
                out.push_str(&serde_json::to_string(&v).ok()?);
            }
            F64 => {
                let v = f64::from_le_bytes(self.take()?);
                out.push_str(&serde_json::to_string(&v).ok()?);
            }
            STR => {
                let len = usize::try_from(self.varint()?).ok()?;
                let end = self.at.checked_add(len)?;
                let s = std::str::from_utf8(self.bytes.get(self.at..end)?).ok()?;
                self.at = end;
                out.push_str(&serde_json::to_string(s).ok()?);
            }
            SEQ => {
                out.push('[');
                let mut first = true;
                while !self.peek_end() {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    self.value(out, false)?;
                }
                out.push(']');
            }
            MAP => {
                out.push('{');
                let mut first = true;
                while !self.peek_end() {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    self.value(out, true)?;
                    out.push(':');
                    self.value(out, false)?;
                }
                out.push('}');
            }
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(u32),
        Tuple(i64, f64),
        Struct { name: String, on: Option<bool> },
    }

    #[derive(Serialize)]
    struct Inner {
        x: f32,
        c: char,
    }

    #[derive(Serialize)]
    struct Step<'a> {
        t: u64,
        #[serde(flatten)]
        inner: &'a Inner,
        shapes: Vec<Shape>,
        keyed: BTreeMap<u32, Option<String>>,
        bools: BTreeMap<bool, ()>,
        text: &'a str,
        neg: i32,
        nan: f64,
        bytes: &'a serde_bytes_like::Bytes,
    }

    mod serde_bytes_like {
        pub(super) struct Bytes(pub(super) Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    #[test]
    fn the_compact_form_prints_back_as_serde_json_writes_it() {
        let inner = Inner { x: 0.1, c: 'é' };
        let bytes = serde_bytes_like::Bytes(vec![0, 200]);
        let step = Step {
            t: u64::MAX,
            inner: &inner,
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(7),
                Shape::Tuple(i64::MIN, -2.5e-300),
                Shape::Struct {
                    name: "quote \" backslash \\ newline \n tab \t bell \u{7} ünï".into(),
                    on: None,
                },
                Shape::Struct {
                    name: String::new(),
                    on: Some(true),
                },
            ],
            keyed: BTreeMap::from([(1, None), (300, Some("x".into()))]),
            bools: BTreeMap::from([(false, ()), (true, ())]),
            text: "",
            neg: -1,
            nan: f64::NAN,
            bytes: &bytes,
        };
        let mut buf = Vec::new();
        encode(&step, &mut buf).unwrap();
        assert_eq!(to_json(&buf), serde_json::to_string(&step).unwrap());
        assert!(buf.len() < serde_json::to_string(&step).unwrap().len());
    }

    #[test]
    fn a_form_cut_short_prints_what_it_read_then_an_ellipsis() {
        let mut buf = Vec::new();
        encode(&vec!["a", "b"], &mut buf).unwrap();
        buf.pop();
        assert_eq!(to_json(&buf), "[\"a\",\"b\",…");
        assert_eq!(to_json(&[]), "…");
        assert_eq!(to_json(&[200]), "…");
    }
}

//! Canonical JSON: RFC 8785, the JSON Canonicalization Scheme (JCS), on `serde_json::Value`.
//!
//! Why our own ~150 lines rather than a crate: the scheme is small, the crates on offer either
//! serialise through their own number formatter we would still have to audit, or drag a second
//! JSON model in; and gpuaudit needs one documented extension (below) that no crate offers. The
//! tests run the RFC's own examples (§3.2.2, §3.2.3 and the number table of Appendix B).
//!
//! The rules (RFC 8785 §3.2):
//! - no whitespace between tokens;
//! - object members sorted by their names compared as arrays of UTF-16 code units (not UTF-8
//!   bytes, not chars: "\u{1F600}" (surrogates D83D DE00) sorts before "\u{FB33}");
//! - strings: `"` and `\` escaped, control characters U+0000–U+001F as `\b \t \n \f \r` or
//!   `\u00xx` (lower-case hex), everything else literal UTF-8 (no `\/`, no `\u` for non-ASCII);
//! - numbers: as ECMAScript's `Number.prototype.toString` prints the IEEE 754 double: shortest
//!   round-trip digits, plain notation for 1e-6 ≤ |x| < 1e21, otherwise `d.ddde±n`; `-0` as `0`.
//!
//! **Extension (documented in docs/evidence.md):** an integer that serde_json holds exactly as
//! u64 or i64 is written as its exact decimal digits. For |n| ≤ 2^53 this is what JCS writes
//! anyway; above that JCS would first round it to a double, so two different 64-bit seeds could
//! canonicalise to the same bytes and a signature would not protect the difference. Exact digits
//! keep every value distinct (RFC 8785 §3.2.2.3 itself recommends carrying such numbers exactly).
//!
//! Input is parsed with [`parse_strict`], which rejects duplicate member names: RFC 8785 requires
//! I-JSON input, and with duplicates two readers could disagree on what a signed file says.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// The canonical UTF-8 bytes of `value`.
pub fn canonicalize(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(value, &mut out);
    out.into_bytes()
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (name, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(n: &Number, out: &mut String) {
    if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(f) = n.as_f64() {
        out.push_str(&ecmascript_number(f));
    }
}

/// ECMAScript `Number.prototype.toString(x)` for finite x (ECMA-262 §6.1.6.1.20). Rust's `{:e}`
/// gives the shortest digits that round-trip, the same digits the ECMAScript algorithm asks for
/// (both pick the closest when several shortest strings round-trip); only the layout differs.
pub fn ecmascript_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        // -0 prints as "0"; NaN and infinities cannot occur in a serde_json Value.
        return "0".into();
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits = even_on_tie(x.abs(), digits, exponent);
    let k = digits.len() as i32;
    // ECMAScript's n: x = 0.d1d2…dk × 10^n.
    let n = exponent + 1;
    let mut s = String::new();
    if x < 0.0 {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        s.push_str(&digits[..n as usize]);
        s.push('.');
        s.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-n) as usize));
        s.push_str(&digits);
    } else {
        s.push_str(&digits[..1]);
        if k > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if n - 1 < 0 { '-' } else { '+' });
        s.push_str(&(n - 1).abs().to_string());
    }
    s
}

/// ECMAScript breaks a tie between two shortest digit strings equally close to x by taking the
/// even one (ECMA-262 §6.1.6.1.20, note 2); Rust's shortest formatting rounds such a tie up. A tie
/// means x's exact decimal expansion continues, after the k shortest digits, with exactly "5".
/// Example: 0x43143ff3c1cb0959 is exactly 1424953923781206.25 → "…206.2", not "…206.3".
fn even_on_tie(x: f64, digits: String, exponent: i32) -> String {
    let k = digits.len();
    // A double's exact expansion has at most 767 significant digits.
    let exact = format!("{:.800e}", x);
    let Some((mantissa, exact_exp)) = exact.split_once('e') else {
        return digits;
    };
    if exact_exp.parse::<i32>().ok() != Some(exponent) {
        return digits;
    }
    let exact_digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let (head, tail) = exact_digits.split_at(k.min(exact_digits.len()));
    let tie = tail.starts_with('5') && tail[1..].bytes().all(|b| b == b'0');
    if !tie {
        return digits;
    }
    // The two candidates are head (truncated) and head + 1 in the last place.
    let Some(last) = head.bytes().last().map(|b| b - b'0') else {
        return digits;
    };
    let even = if last % 2 == 0 {
        head.to_string()
    } else if last < 9 {
        format!("{}{}", &head[..k - 1], last + 1)
    } else {
        return digits;
    };
    // The even candidate must still read back as x.
    if format!("0.{even}e{}", exponent + 1).parse::<f64>().ok() == Some(x) {
        even
    } else {
        digits
    }
}

/// Parse JSON text into a `Value`, rejecting duplicate member names (anywhere in the tree). The
/// error is serde_json's, with line and column.
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let StrictValue(value) = StrictValue::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if members.contains_key(&name) {
                return Err(de::Error::custom(format!(
                    "duplicate member name \"{name}\" (a signed file must say one thing)"
                )));
            }
            members.insert(name, v);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(canonicalize(&parse_strict(text).expect("valid JSON"))).expect("utf-8")
    }

    #[test]
    fn rfc8785_section_3_2_2_example() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc8785_section_3_2_3_sorts_by_utf16_code_units() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
            \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
            \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canon(input), expected);
    }

    #[test]
    fn rfc8785_appendix_b_numbers() {
        let table: [(u64, &str); 24] = [
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in table {
            assert_eq!(
                ecmascript_number(f64::from_bits(bits)),
                expected,
                "{bits:#x}"
            );
        }
    }

    #[test]
    fn every_number_reads_back_exactly() {
        // Pseudo-random bit patterns over the whole double range.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state = crate::rng::mix64(state);
            let x = f64::from_bits(state);
            if !x.is_finite() {
                continue;
            }
            let text = ecmascript_number(x);
            let back: f64 = text.parse().expect("parses");
            assert!(back == x, "{x:e} -> {text}");
        }
    }

    #[test]
    fn integral_doubles_and_integers_agree() {
        assert_eq!(canon("[790.0, 790, 1e2, -0.0, 0.5]"), "[790,790,100,0,0.5]");
        // Above 2^53: exact digits (the documented extension), so two seeds stay distinct.
        assert_eq!(
            canon("[9007199254740993, 18446744073709551615, -9223372036854775808]"),
            "[9007199254740993,18446744073709551615,-9223372036854775808]"
        );
    }

    #[test]
    fn whitespace_and_member_order_do_not_matter() {
        let a = canon(r#"{"b": [1, {"y": 2, "x": "é"}], "a": null}"#);
        let b = canon("{\n\"a\":null,\"b\":[1,{\"x\":\"\\u00e9\",\"y\":2.0}]}");
        assert_eq!(a, b);
        assert_eq!(a, r#"{"a":null,"b":[1,{"x":"é","y":2}]}"#);
    }

    #[test]
    fn duplicate_members_are_rejected_at_any_depth() {
        let e = parse_strict(r#"{"a": {"b": 1, "b": 2}}"#).expect_err("duplicate");
        assert!(e.to_string().contains("duplicate member name \"b\""), "{e}");
        assert!(parse_strict(r#"{"a": 1} x"#).is_err());
        assert!(parse_strict(r#"{"a": 1"#).expect_err("truncated").is_eof());
    }
}

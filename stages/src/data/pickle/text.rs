//! Decoders for the text arguments of protocol 0 opcodes (`STRING`, `UNICODE`, `INT`,
//! `LONG`, `FLOAT`, `GET`/`PUT`), as Python's `pickle` module reads them.

/// `STRING`: a Python 2 `repr` of a byte string, quoted with `'` or `"`, decoded like
/// the `string-escape` codec (`\\ \' \" \a \b \f \n \r \t \v \xhh \ooo`, backslash-newline).
pub(crate) fn decode_string_escape(line: &[u8]) -> Result<Vec<u8>, String> {
    let inner = match line {
        [q, inner @ .., q2] if (*q == b'\'' || *q == b'"') && q == q2 => inner,
        _ => return Err("STRING argument is not a quoted string".into()),
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = inner.get(i) else {
            return Err("STRING ends with a lone backslash".into());
        };
        i += 1;
        match e {
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'\n' => {}
            b'x' => {
                let hex = inner
                    .get(i..i + 2)
                    .ok_or("STRING has a truncated \\x escape")?;
                out.push(hex_value(hex).ok_or("STRING has an invalid \\x escape")? as u8);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match inner.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                // Python keeps unknown escapes verbatim.
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// `UNICODE`: `raw-unicode-escape` text — bytes are Latin-1 code points except
/// `\uXXXX` and `\UXXXXXXXX` escapes. Returned as UTF-8.
pub(crate) fn decode_raw_unicode_escape(line: &[u8]) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b == b'\\' {
            let digits = match line.get(i + 1) {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            if digits > 0 {
                let hex = line
                    .get(i + 2..i + 2 + digits)
                    .ok_or("UNICODE has a truncated \\u escape")?;
                let code = hex_value(hex).ok_or("UNICODE has an invalid \\u escape")?;
                out.push(char::from_u32(code).ok_or("UNICODE escapes an invalid code point")?);
                i += 2 + digits;
                continue;
            }
        }
        out.push(char::from(b));
        i += 1;
    }
    Ok(out)
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(digits).ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// The decimal argument of `INT`, `LONG` (trailing `L`), `GET` and `PUT`.
pub(crate) fn parse_int(line: &[u8]) -> Result<i64, String> {
    let s = std::str::from_utf8(line).map_err(|_| "integer argument is not ASCII".to_string())?;
    let s = s.trim();
    let s = s.strip_suffix('L').unwrap_or(s);
    s.parse::<i64>()
        .map_err(|_| format!("integer argument {:?} is not a 64-bit integer", truncate(s)))
}

/// The argument of `FLOAT` (Python `repr` of a float).
pub(crate) fn parse_float(line: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(line).map_err(|_| "float argument is not ASCII".to_string())?;
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("float argument {:?} is not a number", truncate(s)))
}

/// At most 40 characters of `s`, for error messages.
pub(crate) fn truncate(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_escapes_decode_like_python() {
        let got = decode_string_escape(br"'a\x00\xf0?\n\\\'\101\7'").unwrap();
        assert_eq!(got, b"a\x00\xf0?\n\\'A\x07");
        assert_eq!(decode_string_escape(br#""it's""#).unwrap(), b"it's");
        assert!(decode_string_escape(b"'abc").is_err());
        assert!(decode_string_escape(b"'").is_err());
        assert!(decode_string_escape(br"'\x4'").is_err());
    }

    #[test]
    fn raw_unicode_escape_decodes_latin1_and_escapes() {
        let got = decode_raw_unicode_escape(b"a\xf0\\u005c\\u000a\\U0001F600").unwrap();
        assert_eq!(got, "a\u{f0}\\\n\u{1F600}");
        assert!(decode_raw_unicode_escape(b"\\u12").is_err());
        assert!(decode_raw_unicode_escape(b"\\UFFFFFFFF").is_err());
    }

    #[test]
    fn ints_and_floats() {
        assert_eq!(parse_int(b"01").unwrap(), 1);
        assert_eq!(parse_int(b"-12L").unwrap(), -12);
        assert!(parse_int(b"99999999999999999999999").is_err());
        assert_eq!(parse_float(b"1.5").unwrap(), 1.5);
        assert!(parse_float(b"x").is_err());
    }
}

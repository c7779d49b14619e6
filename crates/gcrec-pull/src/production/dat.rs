//! Concordance DAT load files: fields separated by ASCII 20 (DC4), every field qualified
//! by `þ` (U+00FE), newlines inside a field written as `®` (U+00AE), UTF-8 with a byte
//! order mark, CRLF between records, a header record first.
//!
//! The `csv` crate takes only single-byte delimiters and quotes, and `þ` is two bytes in
//! UTF-8, so the few lines of writing and reading are here (reading only for
//! `gcrec verify`, with a bound on the line length).

use std::io::{self, BufRead, Write};

/// Between fields.
pub const DELIMITER: char = '\u{14}';
/// Around every field.
pub const QUALIFIER: char = 'þ';
/// A newline inside a field.
pub const NEWLINE: char = '®';
/// Between the values of a multi-value field.
pub const MULTI: char = ';';
/// The UTF-8 byte order mark that starts the file.
pub const BOM: &str = "\u{feff}";
/// Longest record `read_records` accepts.
const MAX_RECORD: usize = 4 << 20;

/// One field as it is written: newlines become `®`, a `þ` inside is doubled (as a CSV
/// quote is, which Python's `csv` and review platforms read back as one).
pub fn field(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push(QUALIFIER);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push(NEWLINE);
            }
            '\n' => out.push(NEWLINE),
            QUALIFIER => {
                out.push(QUALIFIER);
                out.push(QUALIFIER);
            }
            c => out.push(c),
        }
    }
    out.push(QUALIFIER);
    out
}

/// Writes one record.
pub fn write_record<S: AsRef<str>>(out: &mut dyn Write, values: &[S]) -> io::Result<()> {
    let mut line = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            line.push(DELIMITER);
        }
        line.push_str(&field(v.as_ref()));
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

/// Splits one record (without its line end) into its fields, `þþ` read as `þ` and
/// `®` as a newline. `None` when it is not a qualified Concordance record.
pub fn parse_record(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        if chars.next()? != QUALIFIER {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                QUALIFIER if chars.peek() == Some(&QUALIFIER) => {
                    chars.next();
                    value.push(QUALIFIER);
                }
                QUALIFIER => break,
                NEWLINE => value.push('\n'),
                c => value.push(c),
            }
        }
        fields.push(value);
        match chars.next() {
            None => return Some(fields),
            Some(DELIMITER) => {}
            Some(_) => return None,
        }
    }
}

/// Reads the records of a load file (the BOM skipped), each line bounded.
pub fn read_records(reader: impl BufRead) -> impl Iterator<Item = io::Result<Option<Vec<String>>>> {
    let mut reader = reader;
    let mut first = true;
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match io::Read::take(&mut reader, MAX_RECORD as u64 + 1).read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(n) if n > MAX_RECORD => {
                return Some(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a record longer than {MAX_RECORD} bytes"),
                )));
            }
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        let mut line = match String::from_utf8(buf) {
            Ok(s) => s,
            Err(_) => return Some(Ok(None)),
        };
        if std::mem::take(&mut first) && line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        Some(Ok(parse_record(line)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields_are_qualified_and_newlines_marked() {
        assert_eq!(field("a"), "þaþ");
        assert_eq!(field("x\r\ny\nz"), "þx®y®zþ");
        assert_eq!(field("þorn"), "þþþornþ");
        let mut out = Vec::new();
        write_record(&mut out, &["a", "b c"]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "þaþ\u{14}þb cþ\r\n");
    }

    proptest! {
        #[test]
        fn records_read_back_as_written(values in proptest::collection::vec("[a-zþ\u{14};\"\n é]{0,12}", 1..6)) {
            let mut out = Vec::new();
            write_record(&mut out, &values).unwrap();
            let text = String::from_utf8(out).unwrap();
            let parsed = parse_record(text.trim_end_matches("\r\n")).unwrap();
            prop_assert_eq!(parsed, values);
        }

        #[test]
        fn any_line_parses_or_is_refused_without_panic(line in "\\PC{0,40}") {
            let _ = parse_record(&line);
        }
    }
}

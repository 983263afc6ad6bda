//! Decoding fuzz bytes into text-shaped parts: lines, `Name: value`
//! headers, a flags byte.

use hubgate::http::Headers;

/// Lines of `data` (split on `\n`, a trailing `\r` dropped), lossily UTF-8.
pub fn lines(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

/// The first byte as flags (0 when empty) and the rest.
pub fn flags(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, data),
    }
}

/// Up to the first `\n` and the rest after it.
pub fn first_line(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(data[..i].strip_suffix(b"\r").unwrap_or(&data[..i]))
                .into_owned(),
            &data[i + 1..],
        ),
        None => (String::from_utf8_lossy(data).into_owned(), &[]),
    }
}

/// `Name: value` (value without leading spaces); a line without `:` is a
/// name with an empty value. CR and NUL are dropped: the runtime's
/// `Headers` refuse them, so no request or upstream answer carries them.
pub fn header(line: &str) -> (String, String) {
    let line: String = line.chars().filter(|c| *c != '\r' && *c != '\0').collect();
    match line.split_once(':') {
        Some((n, v)) => (n.to_string(), v.trim_start_matches(' ').to_string()),
        None => (line, String::new()),
    }
}

pub fn headers<'a>(lines: impl IntoIterator<Item = &'a String>) -> Headers {
    Headers(lines.into_iter().map(|l| header(l)).collect())
}

/// A status from its decimal text; anything else is 200.
pub fn status(text: &str) -> u16 {
    text.trim().parse().unwrap_or(200)
}

/// Replace every `from` in `data` by `to`.
pub fn replace_bytes(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// A cookie parser as the hub's side reads the header (Tornado's
/// `parse_cookie`): split on `;`, then at the first `=`, both sides
/// stripped of what Python's `str.strip()` strips.
pub fn python_cookie_names(header: &str) -> Vec<String> {
    header
        .split(';')
        .filter_map(|chunk| {
            let (k, v) = chunk.split_once('=').unwrap_or(("", chunk));
            let (k, v) = (python_strip(k), python_strip(v));
            (!k.is_empty() || !v.is_empty()).then(|| k.to_string())
        })
        .collect()
}

/// Python's `str.strip()`: Unicode white space plus the C0 separators
/// U+001C..U+001F, which Rust's `trim` keeps.
pub fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

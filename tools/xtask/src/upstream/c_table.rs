//! Reads a test table out of a kernel selftest's C source: an array
//! initializer of string-only rows, such as prog_tests/spin_lock.c's
//!
//! ```c
//! } spin_lock_fail_tests[] = {
//!     { "lock_id_kptr_preserve",
//!       "5: (bf) r1 = r0 ..." "more" },
//!     ...
//! };
//! ```
//!
//! Only string literals (adjacent ones concatenated, escapes decoded),
//! braces, commas and comments may appear between the outer braces; anything
//! else (a macro, a number) is an error, so that a change upstream breaks the
//! build instead of dropping a test.

use anyhow::{bail, Context, Result};

/// The rows of array `array` in `source`, each a list of its string fields.
pub fn string_rows(source: &str, array: &str) -> Result<Vec<Vec<String>>> {
    let body = initializer(source, array)?;
    let tokens = tokenize(body).with_context(|| format!("in the initializer of {array}[]"))?;
    parse_rows(&tokens).with_context(|| format!("in the initializer of {array}[]"))
}

/// The text from the `{` that opens `array[] = {` on.
fn initializer<'a>(source: &'a str, array: &str) -> Result<&'a str> {
    let mut from = 0;
    while let Some(pos) = source[from..].find(array) {
        let start = from + pos;
        from = start + array.len();
        let before_ok = source[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_ident(c));
        let rest = source[from..].trim_start();
        let Some(rest) = rest.strip_prefix('[') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix(']') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        if before_ok && rest.starts_with('{') {
            return Ok(rest);
        }
    }
    bail!("no '{array}[] = {{' in the source")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Comma,
    Str(String),
}

/// Tokens up to and including the `}` that closes the initializer.
fn tokenize(text: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                    .context("unterminated comment")?;
                i = end + 2;
            }
            '{' => {
                depth += 1;
                tokens.push(Token::Open);
                i += 1;
            }
            '}' => {
                tokens.push(Token::Close);
                i += 1;
                depth = depth.checked_sub(1).context("unbalanced '}'")?;
                if depth == 0 {
                    return Ok(tokens);
                }
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '"' => {
                let (s, next) = string_literal(&chars, i)?;
                tokens.push(Token::Str(s));
                i = next;
            }
            _ => {
                let line: String = chars[i..].iter().take_while(|&&c| c != '\n').collect();
                bail!("unexpected '{c}' (only string rows are supported) at: {line}");
            }
        }
    }
    bail!("initializer not closed")
}

/// Decodes the literal starting at the `"` at `start`; returns it and the
/// index after its closing quote.
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let c = *chars.get(i).context("unterminated string literal")?;
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => bail!("newline inside a string literal"),
            '\\' => {
                let e = *chars.get(i + 1).context("unterminated string literal")?;
                i += 2;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    '\\' | '"' | '\'' | '?' => out.push(e),
                    '0'..='7' => {
                        let mut value = e.to_digit(8).unwrap();
                        for _ in 0..2 {
                            match chars.get(i).and_then(|c| c.to_digit(8)) {
                                Some(d) => {
                                    value = value * 8 + d;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        out.push(byte_char(value)?);
                    }
                    'x' => {
                        let digits: String = chars[i..]
                            .iter()
                            .take_while(|c| c.is_ascii_hexdigit())
                            .collect();
                        if digits.is_empty() {
                            bail!("\\x without hex digits");
                        }
                        i += digits.len();
                        out.push(byte_char(u32::from_str_radix(&digits, 16)?)?);
                    }
                    _ => bail!("unsupported escape \\{e} in a string literal"),
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// A numeric escape; only ASCII, which is all a verifier message holds.
fn byte_char(value: u32) -> Result<char> {
    match char::from_u32(value) {
        Some(c) if c.is_ascii() => Ok(c),
        _ => bail!("numeric escape {value:#x} is not ASCII"),
    }
}

fn parse_rows(tokens: &[Token]) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut it = tokens.iter().peekable();
    if it.next() != Some(&Token::Open) {
        bail!("initializer does not start with '{{'");
    }
    loop {
        match it.next() {
            Some(Token::Close) => break,
            Some(Token::Open) => {}
            other => bail!("expected '{{' of a row or the closing '}}', got {other:?}"),
        }
        let mut fields = Vec::new();
        loop {
            let mut field: Option<String> = None;
            while let Some(Token::Str(s)) = it.peek() {
                field.get_or_insert_with(String::new).push_str(s);
                it.next();
            }
            let field = field.with_context(|| format!("row {}: empty field", rows.len() + 1))?;
            fields.push(field);
            match it.next() {
                Some(Token::Comma) if it.peek() == Some(&&Token::Close) => {
                    it.next();
                    break;
                }
                Some(Token::Comma) => {}
                Some(Token::Close) => break,
                other => bail!(
                    "row {}: expected ',' or '}}', got {other:?}",
                    rows.len() + 1
                ),
            }
        }
        rows.push(fields);
        match it.next() {
            Some(Token::Comma) => {}
            Some(Token::Close) => break,
            other => bail!("expected ',' or '}}' after a row, got {other:?}"),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_concatenation_escapes_and_comments() {
        let src = r#"
static char log_buf[1024];
static struct { const char *a, *b; } other_tests[] = { { "x", "y" } };
static struct {
	const char *prog_name;
	const char *err_msg;
} fail_tests[] = {
	/* first */
	{ "one",
	  "a: (bf) r1 = r0 ; R0_w=x\n"
	  "[0-9]\\+: call" },
	{ "two", "say \"hi\"\t\101\x42" }, // trailing
	{ "three", "plain", },
};
"#;
        let rows = string_rows(src, "fail_tests").unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    "one".to_string(),
                    "a: (bf) r1 = r0 ; R0_w=x\n[0-9]\\+: call".to_string()
                ],
                vec!["two".to_string(), "say \"hi\"\tAB".to_string()],
                vec!["three".to_string(), "plain".to_string()],
            ]
        );
        assert_eq!(
            string_rows(src, "other_tests").unwrap(),
            vec![vec!["x", "y"]]
        );
    }

    #[test]
    fn name_must_be_the_whole_identifier() {
        let src = "x my_fail_tests[] = { { \"a\" } };\n y fail_tests[] = { { \"b\" } };";
        assert_eq!(string_rows(src, "fail_tests").unwrap(), vec![vec!["b"]]);
    }

    #[test]
    fn anything_but_strings_is_an_error() {
        for bad in [
            "t[] = { { \"a\", NULL } };",
            "t[] = { { \"a\", 3 } };",
            "t[] = { { \"a\", } , X };",
            "t[] = { { \"a\" \"b\"",
            "t[] = { { \"a\\q\" } };",
            "t[] = { { \"a\", , \"b\" } };",
            "t[] = { /* open",
            "nothing here",
        ] {
            assert!(string_rows(bad, "t").is_err(), "{bad}");
        }
    }
}

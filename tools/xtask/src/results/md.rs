//! Markdown escaping for text that comes from result files (test names,
//! skip reasons, commands): it must not turn into markup, break a table row
//! or bring non-ASCII into the page.

/// `s` as plain text for a paragraph or a table cell: one line, markup
/// characters backslash-escaped, non-ASCII as HTML character references.
pub fn text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let alnum = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(|c| c.is_alphanumeric())
    };
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            // An underscore inside a word (`unprivileged_bpf_disabled`) is
            // never emphasis; left bare, the raw page stays readable.
            '_' if alnum(i.checked_sub(1)) && alnum(Some(i + 1)) => out.push(c),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("&#x{:x};", u32::from(c))),
        }
    }
    out
}

/// `s` as a code span, which keeps names readable in the raw page. Only `|`
/// needs escaping there (for tables; GitHub drops the backslash). Text that
/// a code span cannot hold (a backtick, a line break, non-ASCII, which a
/// code span would show as a character reference) falls back to [`text`].
pub fn code(s: &str) -> String {
    if s.is_empty() || !s.is_ascii() || s.contains(['`', '\n', '\r']) {
        return text(s);
    }
    format!("`{}`", s.replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_non_ascii_are_escaped() {
        assert_eq!(text("a|b *c* <d>\nx"), r"a\|b \*c\* \<d\> x");
        assert_eq!(text("caf\u{e9}"), "caf&#xe9;");
        assert_eq!(text("a_b _c d_ e__f"), r"a_b \_c d\_ e\_\_f");
        assert_eq!(code("a/b: x|y"), r"`a/b: x\|y`");
        assert_eq!(code("a`b"), r"a\`b");
        assert_eq!(code("caf\u{e9}"), "caf&#xe9;");
    }
}

//! Turns a POSIX basic regular expression, as prog_tests/spin_lock.c hands
//! them to `regcomp(REG_NOSUB)` and matches them against the whole verifier
//! log, into a `__msg` of ours: literal text with `{{...}}` regex parts (Rust
//! `regex` syntax, compiled in multi-line mode by the runner's matcher).
//!
//! The supported subset is what such tables use: literal characters, `.`,
//! bracket expressions, `*`, GNU `\+` and `\?`, `\{m,n\}`, escaped special
//! characters, and `^`/`$` as anchors at the ends. Groups, alternation and
//! back-references are rejected rather than mistranslated.

use anyhow::{bail, Context, Result};

#[derive(Debug)]
enum Piece {
    Lit(char),
    Re { re: String, quantified: bool },
}

/// The `__msg` text that matches where `bre` matches.
pub fn to_msg(bre: &str) -> Result<String> {
    let pieces = translate(bre).with_context(|| format!("regex {bre:?}"))?;
    render(&pieces).with_context(|| format!("regex {bre:?}"))
}

fn translate(bre: &str) -> Result<Vec<Piece>> {
    let chars: Vec<char> = bre.chars().collect();
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let e = *chars.get(i + 1).context("trailing backslash")?;
                i += 2;
                match e {
                    '+' | '?' => quantify(&mut pieces, &e.to_string())?,
                    '{' => {
                        let close = (i..chars.len().saturating_sub(1))
                            .find(|&j| chars[j] == '\\' && chars[j + 1] == '}')
                            .context("\\{ without \\}")?;
                        let bounds: String = chars[i..close].iter().collect();
                        let valid = !bounds.is_empty()
                            && bounds.split(',').count() <= 2
                            && bounds.chars().all(|c| c.is_ascii_digit() || c == ',')
                            && !bounds.starts_with(',');
                        if !valid {
                            bail!("bad interval \\{{{bounds}\\}}");
                        }
                        quantify(&mut pieces, &format!("{{{bounds}}}"))?;
                        i = close + 2;
                    }
                    '.' | '*' | '[' | ']' | '^' | '$' | '\\' | '/' => pieces.push(Piece::Lit(e)),
                    _ => bail!("unsupported escape \\{e} (groups, alternation, back-references and GNU classes are not translated)"),
                }
            }
            // A leading `*` is literal in a BRE.
            '*' if pieces.is_empty() => {
                pieces.push(Piece::Lit('*'));
                i += 1;
            }
            '*' => {
                quantify(&mut pieces, "*")?;
                i += 1;
            }
            // Without REG_NEWLINE `.` matches a newline too.
            '.' => {
                pieces.push(re("(?s:.)"));
                i += 1;
            }
            '[' => {
                let (class, next) = bracket(&chars, i)?;
                pieces.push(re(&class));
                i = next;
            }
            // Anchors only at the ends, as in a BRE; they anchor to the log
            // (no REG_NEWLINE), not to a line.
            '^' if i == 0 => {
                pieces.push(re(r"\A"));
                i += 1;
            }
            '$' if i + 1 == chars.len() => {
                pieces.push(re(r"\z"));
                i += 1;
            }
            _ => {
                pieces.push(Piece::Lit(c));
                i += 1;
            }
        }
    }
    Ok(pieces)
}

fn re(text: &str) -> Piece {
    Piece::Re {
        re: text.to_string(),
        quantified: false,
    }
}

/// Applies quantifier `q` to the last atom.
fn quantify(pieces: &mut Vec<Piece>, q: &str) -> Result<()> {
    let atom = match pieces.pop() {
        None => bail!("quantifier '{q}' without an atom"),
        Some(Piece::Lit(c)) => regex::escape(&c.to_string()),
        Some(Piece::Re { re, quantified }) => {
            if re == r"\A" || re == r"\z" {
                bail!("quantified anchor");
            }
            if quantified {
                format!("(?:{re})")
            } else {
                re
            }
        }
    };
    pieces.push(Piece::Re {
        re: format!("{atom}{q}"),
        quantified: true,
    });
    Ok(())
}

/// The bracket expression opening at `start`, in Rust syntax, and the index
/// after it. POSIX takes everything literally inside except ranges and
/// `[:class:]`; Rust gives `\`, `[`, `&&`, `--`, `~~` meaning, so those are
/// escaped.
fn bracket(chars: &[char], start: usize) -> Result<(String, usize)> {
    let mut out = String::from("[");
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *chars.get(i).context("unterminated bracket expression")?;
        if c == ']' && !first {
            out.push(']');
            return Ok((out, i + 1));
        }
        first = false;
        if c == '[' {
            match chars.get(i + 1) {
                Some(':') => {
                    let name_end = (i + 2..chars.len().saturating_sub(1))
                        .find(|&j| chars[j] == ':' && chars[j + 1] == ']')
                        .context("unterminated [: :] class")?;
                    let name: String = chars[i + 2..name_end].iter().collect();
                    const CLASSES: &[&str] = &[
                        "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print",
                        "punct", "space", "upper", "xdigit",
                    ];
                    if !CLASSES.contains(&name.as_str()) {
                        bail!("unknown class [:{name}:]");
                    }
                    out.push_str(&format!("[:{name}:]"));
                    i = name_end + 2;
                    continue;
                }
                Some('.' | '=') => bail!("collating elements are not supported"),
                _ => {}
            }
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            let end = chars[i + 2];
            if end < c {
                bail!("reversed range {c}-{end}");
            }
            out.push_str(&class_char(c));
            out.push('-');
            out.push_str(&class_char(end));
            i += 3;
            continue;
        }
        out.push_str(&class_char(c));
        i += 1;
    }
}

fn class_char(c: char) -> String {
    if matches!(c, '\\' | '[' | ']' | '^' | '-' | '&' | '~') {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// Literal runs stay text, regex runs become one `{{...}}` each. A literal
/// `{` goes in as a regex so that it cannot open a `{{`.
fn render(pieces: &[Piece]) -> Result<String> {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        // The matcher closes a regex at the first `}}`.
        let mut text = std::mem::take(run);
        if text.ends_with('}') {
            text = format!("(?:{text})");
        }
        if text.contains("}}") {
            bail!("regex part {text:?} contains '}}}}', which a __msg cannot hold");
        }
        regex::Regex::new(&text).with_context(|| format!("translated regex {text:?}"))?;
        out.push_str("{{");
        out.push_str(&text);
        out.push_str("}}");
        Ok(())
    };
    for piece in pieces {
        match piece {
            Piece::Lit('{') => run.push_str(r"\{"),
            Piece::Lit(c) => {
                flush(&mut run, &mut out)?;
                out.push(*c);
            }
            Piece::Re { re, .. } => run.push_str(re),
        }
    }
    flush(&mut run, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use regex::{Regex, RegexBuilder};

    use super::*;

    #[test]
    fn translations() {
        for (bre, msg) in [
            (
                "bpf_spin_unlock of different lock",
                "bpf_spin_unlock of different lock",
            ),
            (
                "[0-9]\\+: (bf) r1 = r0\n[0-9]\\+: (85) call",
                "{{[0-9]+}}: (bf) r1 = r0\n{{[0-9]+}}: (85) call",
            ),
            ("map=.data.A", "map={{(?s:.)}}data{{(?s:.)}}A"),
            ("a*b", "{{a*}}b"),
            ("*a", "*a"),
            ("x\\{2,3\\}y", "{{(?:x{2,3})}}y"),
            ("x\\?\\.", "{{x?}}."),
            ("a{b}", "a{{\\{}}b}"),
            ("^R1$", "{{\\A}}R1{{\\z}}"),
            ("a^b$c", "a^b$c"),
            ("[^]a-c[:digit:]\\]x", "{{[^\\]a-c[:digit:]\\\\]}}x"),
            ("[a-]", "{{[a\\-]}}"),
            ("[.]*", "{{[.]*}}"),
            ("a**", "{{(?:a*)*}}"),
        ] {
            assert_eq!(to_msg(bre).unwrap(), msg, "{bre:?}");
        }
    }

    #[test]
    fn unsupported_is_an_error() {
        for bad in [
            "\\(a\\)",
            "a\\|b",
            "\\1",
            "\\w",
            "[abc",
            "a\\",
            "\\+a",
            "[[:nope:]]",
            "[[.a.]]",
            "[z-a]",
            "a\\{,2\\}",
            "a\\{2",
            "^*",
        ] {
            assert!(to_msg(bad).is_err(), "{bad:?} gave {:?}", to_msg(bad));
        }
    }

    /// The runner's reading of a `__msg` (tools/runner/src/matcher.rs).
    fn msg_regex(msg: &str) -> Regex {
        let mut pattern = String::new();
        let mut rest = msg;
        while let Some(open) = rest.find("{{") {
            pattern.push_str(&regex::escape(&rest[..open]));
            let after = &rest[open + 2..];
            let close = after.find("}}").unwrap();
            pattern.push_str(&format!("(?:{})", &after[..close]));
            rest = &after[close + 2..];
        }
        pattern.push_str(&regex::escape(rest));
        RegexBuilder::new(&pattern)
            .multi_line(true)
            .build()
            .unwrap()
    }

    /// What spin_lock.c's match_regex() says.
    fn posix_matches(bre: &str, text: &str) -> bool {
        let pattern = CString::new(bre).unwrap();
        let text = CString::new(text).unwrap();
        // SAFETY: regex_t is plain data that regcomp fills in.
        let mut re: libc::regex_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid C strings; regfree after a successful regcomp.
        unsafe {
            assert_eq!(
                libc::regcomp(&mut re, pattern.as_ptr(), libc::REG_NOSUB),
                0,
                "{bre:?}"
            );
            let rc = libc::regexec(&re, text.as_ptr(), 0, std::ptr::null_mut(), 0);
            libc::regfree(&mut re);
            rc == 0
        }
    }

    /// The translation agrees with glibc's regexec on logs like the real ones.
    #[test]
    fn agrees_with_posix_regexec() {
        let log = "0: R1=ctx() R10=fp0\n\
                   4: (bf) r1 = r0                       ; R0_w=map_value(id=1,map=array_map,ks=4,vs=8) R1_w=map_value(id=1,map=array_map,ks=4,vs=8)\n\
                   5: (85) call bpf_this_cpu_ptr#154\n\
                   R1 type=map_value expected=percpu_ptr_\n\
                   ; R1_w=map_value(map=.data.A,ks=4,vs=4)\n\
                   2: (85) call bpf_this_cpu_ptr#154\n\
                   {braces} a*b aaab x.y\n";
        for bre in [
            "[0-9]\\+: (bf) r1 = r0                       ; R0_w=map_value(id=1,map=array_map,ks=4,vs=8) R1_w=map_value(id=1,map=array_map,ks=4,vs=8)\n[0-9]\\+: (85) call bpf_this_cpu_ptr#154\nR1 type=map_value expected=percpu_ptr_",
            "[0-9]\\+: (bf) r1 = r0 ;",
            "; R1_w=map_value(map=.data.A,ks=4,vs=4)\n2: (85) call bpf_this_cpu_ptr#154\nR1 type=map_value expected=percpu_ptr_",
            "; R1_w=map_value(map=.data.B,ks=4,vs=4)",
            "map=.data.A",
            "map=xdata.A",
            "percpu_ptr_\n;",
            "154.R1",
            "{braces}",
            "{braces} a\\*b a*b",
            "a\\{3\\}b",
            "a\\{4\\}b",
            "x[.]y",
            "x[^.]y",
            "^0: R1",
            "^R1",
            "ptr_$",
            "aaab x\\.y\n$",
            "fp[[:digit:]]",
            "fp[[:alpha:]]",
        ] {
            let msg = to_msg(bre).unwrap();
            assert_eq!(
                msg_regex(&msg).is_match(log),
                posix_matches(bre, log),
                "{bre:?} -> {msg:?}"
            );
        }
    }
}

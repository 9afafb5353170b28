//! Edits the kernel's MAINTAINERS file the way a patch author would: one
//! entry, inserted where the file's alphabetical order puts it, its `F:`
//! patterns sorted (checkpatch and `scripts/parse-maintainers.pl` expect
//! both).

use anyhow::{bail, Result};

/// Whether `lines[i]` starts an entry: after a blank line, not a tag line
/// itself, and followed by one.
fn is_title(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    !line.is_empty()
        && !line.starts_with('\t')
        && !is_tag(line)
        && i > 0
        && lines[i - 1].is_empty()
        && lines.get(i + 1).is_some_and(|n| is_tag(n))
}

/// `M:\t...`, `F:\t...` and the like.
fn is_tag(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 2 && b[0].is_ascii_uppercase() && b[1] == b':' && b[2] == b'\t'
}

/// Inserts `entry` (a title line and its tag lines) before the first entry
/// whose title sorts after it. An entry with the same title is replaced.
pub fn add_entry(text: &str, entry: &str) -> Result<String> {
    let entry = entry.trim_end();
    let title = entry.lines().next().unwrap_or_default();
    let text = remove_entry(text, title);
    let lines: Vec<&str> = text.lines().collect();
    let at = (0..lines.len())
        .find(|&i| is_title(&lines, i) && lines[i].to_uppercase() > title.to_uppercase())
        .ok_or_else(|| anyhow::anyhow!("MAINTAINERS has no entry that sorts after {title:?}"))?;
    let mut out: Vec<&str> = lines[..at].to_vec();
    out.extend(entry.lines());
    out.push("");
    out.extend(&lines[at..]);
    Ok(out.join("\n") + "\n")
}

/// The lines of the entry titled `title`: its title line and one past its
/// last tag line.
fn entry_bounds(lines: &[&str], title: &str) -> Option<(usize, usize)> {
    let start = (0..lines.len()).find(|&i| lines[i] == title && is_title(lines, i))?;
    let mut end = start + 1;
    while end < lines.len() && is_tag(lines[end]) {
        end += 1;
    }
    Some((start, end))
}

fn remove_entry(text: &str, title: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some((start, mut end)) = entry_bounds(&lines, title) else {
        return text.to_string();
    };
    // The blank line after it.
    if end < lines.len() && lines[end].is_empty() {
        end += 1;
    }
    let mut out = lines[..start].to_vec();
    out.extend(&lines[end..]);
    out.join("\n") + "\n"
}

/// Adds `F:` patterns for `files` to the entry titled `title`, keeping the
/// `F:` lines sorted.
pub fn add_files(text: &str, title: &str, files: &[String]) -> Result<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let Some((start, end)) = entry_bounds(&refs, title) else {
        bail!("MAINTAINERS has no entry {title:?}");
    };
    let mut patterns: Vec<String> = lines[start + 1..end]
        .iter()
        .filter(|l| l.starts_with("F:\t"))
        .cloned()
        .chain(files.iter().map(|f| format!("F:\t{f}")))
        .collect();
    patterns.sort();
    patterns.dedup();
    let first_f = (start + 1..end)
        .find(|&i| lines[i].starts_with("F:\t"))
        .unwrap_or(end);
    let others_after: Vec<String> = lines[first_f..end]
        .iter()
        .filter(|l| !l.starts_with("F:\t"))
        .cloned()
        .collect();
    let mut block = patterns;
    block.extend(others_after);
    lines.splice(first_f..end, block);
    Ok(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::{add_entry, add_files};

    const FILE: &str =
        "List\n\tM: *Mail* patches\n\nBPF [RINGBUF]\nM:\tA <a@x>\nF:\tkernel/bpf/ringbuf.c\n\n\
                        BPF [SECURITY & LSM] (x)\nM:\tB <b@x>\nM:\tZ <z@x>\nF:\tsecurity/bpf/\n";

    #[test]
    fn entry_goes_where_the_order_puts_it() {
        let e = "BPF [RQSPINLOCK IN RUST] (bpf_rqspinlock)\nM:\tMe <me@x>\nF:\tkernel/bpf/rqspinlock_rs/\n";
        let out = add_entry(FILE, e).unwrap();
        let ring = out.find("BPF [RINGBUF]").unwrap();
        let ours = out.find("BPF [RQSPINLOCK").unwrap();
        let lsm = out.find("BPF [SECURITY").unwrap();
        assert!(ring < ours && ours < lsm, "{out}");
        // Right before the next entry's title, not inside an entry.
        assert!(
            out.contains("F:\tkernel/bpf/rqspinlock_rs/\n\nBPF [SECURITY"),
            "{out}"
        );
        // Idempotent: adding it again replaces it.
        assert_eq!(add_entry(&out, e).unwrap(), out);
    }

    #[test]
    fn files_are_sorted_into_the_entry() {
        let out = add_files(
            FILE,
            "BPF [RINGBUF]",
            &["include/a.h".into(), "tools/z.c".into()],
        )
        .unwrap();
        assert!(
            out.contains(
                "F:\tinclude/a.h\nF:\tkernel/bpf/ringbuf.c\nF:\ttools/z.c\n\nBPF [SECURITY"
            ),
            "{out}"
        );
        assert!(add_files(FILE, "NOPE", &[]).is_err());
    }
}

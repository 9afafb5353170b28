//! `make series`: writes the whole series to `patches/` as `git
//! format-patch` files, with a cover letter, To/Cc from the base tree's
//! `scripts/get_maintainer.pl`, `base-commit:` and the author's sign-off.
//!
//! The output is a function of the sources (the verifier patches in
//! `patches/`, `rust/`, `selftests/`, `tools/series/`), the author, the
//! date and the subject prefix. `make series-check` regenerates it with
//! the committed author, date and prefix and fails when anything differs,
//! so the committed `patches/` is always what the sources say.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::author::Author;
use crate::paths::Paths;
use crate::series::{self, files, BASE, COVER_LETTER};

/// The cover letter's subject and text (first line: subject; `@BASE@` is
/// the base tree's version).
const COVER_SOURCE: &str = "tools/series/cover-letter.txt";
/// `[RFC PATCH 6.12 n/m]`: an RFC of a backport to the 6.12 LTS tree.
pub const DEFAULT_PREFIX: &str = "RFC PATCH 6.12";
/// The branch in the mail worktree that carries the series' commits.
const BRANCH: &str = "mail";

/// How to write the series.
pub struct Spec {
    pub author: Author,
    pub prefix: String,
}

/// The series as committed in `patches/`: its author, date and prefix, read
/// from the cover letter.
pub fn committed(paths: &Paths) -> Result<Option<Spec>> {
    let cover = paths.repo.join("patches").join(COVER_LETTER);
    if !cover.exists() {
        return Ok(None);
    }
    let author = Author::from_patch(&cover)?
        .with_context(|| format!("{} has no From:/Date: header", cover.display()))?;
    let text = std::fs::read_to_string(&cover)?;
    let prefix = subject_prefix(&text)
        .with_context(|| format!("{} has no [PREFIX 0/N] subject", cover.display()))?;
    Ok(Some(Spec { author, prefix }))
}

/// `RFC PATCH 6.12` of `Subject: [RFC PATCH 6.12 0/5] ...`.
fn subject_prefix(text: &str) -> Option<String> {
    let subject = text.lines().find_map(|l| l.strip_prefix("Subject: ["))?;
    let inside = subject.split_once(']')?.0;
    let (prefix, _) = inside.rsplit_once(' ')?;
    Some(prefix.to_string())
}

/// The worktree of the pipeline's tree that `make series` commits in, so
/// the build trees (and their mtimes) are left alone.
pub fn worktree(sh: &Shell, paths: &Paths) -> Result<PathBuf> {
    let src = crate::source::prepare(sh, paths, None)?;
    crate::source::worktree(sh, &src, "mail")
}

/// Writes the series as `spec` says into `dest` (created empty).
pub fn render(sh: &Shell, paths: &Paths, tree: &Path, spec: &Spec, dest: &Path) -> Result<()> {
    series::commit_series(sh, paths, tree, BRANCH, &spec.author, false)?;
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest)?;
    let prefix = &spec.prefix;
    let range = format!("{BASE}..{BRANCH}");
    let (name, email) = (&spec.author.name, &spec.author.email);
    // The user's git configuration must not change the output (a diff
    // prefix, a signature, a numbering style): only the repository's.
    let mut c = cmd!(
        sh,
        "git -C {tree} -c user.name={name} -c user.email={email}
         format-patch -q --signoff --cover-letter --no-signature --base={BASE}
         --subject-prefix={prefix} -o {dest} {range}"
    )
    .env("GIT_CONFIG_GLOBAL", "/dev/null")
    .env("GIT_CONFIG_NOSYSTEM", "1");
    for (k, v) in spec.author.git_env() {
        c = c.env(k, v);
    }
    c.quiet().run().context("git format-patch")?;

    let cover_src = paths.repo.join(COVER_SOURCE);
    let text = std::fs::read_to_string(&cover_src)
        .with_context(|| format!("reading {}", cover_src.display()))?;
    let (major, minor, sub) = crate::source::kernel_version(tree)?;
    let text = text.replace("@BASE@", &format!("Linux {major}.{minor}.{sub}"));
    let (subject, body) = text.split_once('\n').unwrap_or((&text, ""));
    let cover = dest.join(COVER_LETTER);
    let letter = std::fs::read_to_string(&cover)?
        .replace("*** SUBJECT HERE ***", subject.trim())
        .replace("*** BLURB HERE ***", body.trim());
    std::fs::write(&cover, letter)?;
    add_recipients(sh, tree, dest, &spec.author)
}

/// To: the maintainers of what each patch touches; Cc: its reviewers and
/// lists; the cover letter goes to everyone any patch goes to. The author
/// is left out (they send it).
fn add_recipients(sh: &Shell, tree: &Path, dir: &Path, author: &Author) -> Result<()> {
    let patches = files(dir)?;
    let mut all_to: Vec<String> = Vec::new();
    let mut all_cc: Vec<String> = Vec::new();
    let mut per_patch = Vec::new();
    for p in patches.iter().filter(|p| !p.ends_with(COVER_LETTER)) {
        let to = get_maintainer(sh, tree, p, &["--m", "--no-r", "--no-l"], author)?;
        let cc: Vec<String> = get_maintainer(sh, tree, p, &["--no-m", "--r", "--l"], author)?
            .into_iter()
            .filter(|a| !to.contains(a))
            .collect();
        all_to.extend(to.iter().cloned());
        all_cc.extend(cc.iter().cloned());
        per_patch.push((p.clone(), to, cc));
    }
    // get_maintainer.pl's order differs from run to run (Perl hashes);
    // sorted, the series is the same every time it is written.
    for list in [&mut all_to, &mut all_cc] {
        list.sort();
        dedup(list);
    }
    for (_, to, cc) in &mut per_patch {
        to.sort();
        cc.sort();
    }
    all_cc.retain(|a| !all_to.contains(a));
    per_patch.push((dir.join(COVER_LETTER), all_to, all_cc));
    for (p, to, cc) in per_patch {
        let text = std::fs::read_to_string(&p)?;
        std::fs::write(&p, with_headers(&text, &to, &cc)?)?;
    }
    Ok(())
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|a| seen.insert(a.clone()));
}

/// `scripts/get_maintainer.pl` of the tree on one patch: addresses only,
/// from MAINTAINERS alone (the tree's git history is one import commit).
fn get_maintainer(
    sh: &Shell,
    tree: &Path,
    patch: &Path,
    roles: &[&str],
    author: &Author,
) -> Result<Vec<String>> {
    let _d = sh.push_dir(tree);
    let out = cmd!(
        sh,
        "perl scripts/get_maintainer.pl --no-git --no-git-fallback --no-rolestats
         --no-multiline --separator , {roles...} {patch}"
    )
    .quiet()
    .read()
    .with_context(|| format!("scripts/get_maintainer.pl {}", patch.display()))?;
    Ok(out
        .split(',')
        .map(|a| mime_address(a.trim()))
        .filter(|a| !a.is_empty() && !a.contains(&format!("<{}>", author.email)))
        .filter(|a| *a != author.email)
        .collect())
}

/// A mail header is ASCII: a display name with other characters is
/// written as an RFC 2047 encoded word (`=?UTF-8?q?...?=`), as `git
/// format-patch` writes a non-ASCII `From:`; `git send-email` decodes it.
fn mime_address(addr: &str) -> String {
    if addr.is_ascii() {
        return addr.to_string();
    }
    let (name, rest) = match addr.rsplit_once(" <") {
        Some((n, r)) => (n.trim_matches('"'), format!(" <{r}")),
        None => (addr, String::new()),
    };
    let mut word = String::from("=?UTF-8?q?");
    for b in name.bytes() {
        match b {
            b' ' => word.push('_'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => word.push(b as char),
            _ => word.push_str(&format!("={b:02X}")),
        }
    }
    word.push_str("?=");
    word + &rest
}

/// Adds `To:` and `Cc:` headers at the end of a patch's mail headers,
/// folded one address per line as `git format-patch --to` writes them.
fn with_headers(text: &str, to: &[String], cc: &[String]) -> Result<String> {
    let Some(end) = text.find("\n\n") else {
        bail!("a patch without mail headers");
    };
    let mut headers = String::new();
    for (name, list) in [("To", to), ("Cc", cc)] {
        if !list.is_empty() {
            headers.push_str(&format!("\n{name}: {}", list.join(",\n    ")));
        }
    }
    Ok(format!("{}{}{}", &text[..end], headers, &text[end..]))
}

/// `make series`: regenerates `patches/` as the user, keeping the committed
/// date when the result would otherwise be the same.
pub fn write(sh: &Shell, paths: &Paths, prefix: Option<&str>) -> Result<()> {
    let stage = crate::stage::Stage::start("series");
    let author = Author::from_git_config(sh)?;
    let old = committed(paths)?;
    let prefix = prefix
        .map(str::to_string)
        .or_else(|| old.as_ref().map(|o| o.prefix.clone()))
        .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
    let tree = worktree(sh, paths)?;
    let tmp = paths.out.join("series").join("new");
    let patches_dir = paths.repo.join("patches");
    if let Some(old) = &old {
        if old.author.name == author.name && old.author.email == author.email {
            let same_date = Spec {
                author: old.author.clone(),
                prefix: prefix.clone(),
            };
            render(sh, paths, &tree, &same_date, &tmp)?;
            if differences(&tmp, &patches_dir)?.is_empty() {
                stage.done(format!(
                    "patches/ is up to date ({} files)",
                    files(&patches_dir)?.len()
                ));
                return Ok(());
            }
        }
    }
    let spec = Spec { author, prefix };
    render(sh, paths, &tree, &spec, &tmp)?;
    for p in files(&patches_dir)? {
        std::fs::remove_file(&p)?;
    }
    let written = files(&tmp)?;
    for p in &written {
        std::fs::copy(p, patches_dir.join(p.file_name().unwrap()))?;
    }
    stage.done(format!(
        "{} files written to {} as {}",
        written.len(),
        patches_dir.display(),
        spec.author.ident()
    ));
    println!(
        "Review them, run `make series-check`, commit, then send:\n  \
         git send-email --to=bpf@vger.kernel.org patches/*.patch\n\
         (each file carries its To: and Cc: from scripts/get_maintainer.pl)"
    );
    Ok(())
}

/// The names of the files that differ between two series directories
/// (present in one only, or with different contents).
pub fn differences(a: &Path, b: &Path) -> Result<Vec<String>> {
    let names = |d: &Path| -> Result<std::collections::BTreeSet<String>> {
        Ok(files(d)?
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect())
    };
    let (na, nb) = (names(a)?, names(b)?);
    let mut out = Vec::new();
    for n in na.union(&nb) {
        if std::fs::read(a.join(n)).ok() != std::fs::read(b.join(n)).ok() {
            out.push(n.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{subject_prefix, with_headers};

    #[test]
    fn prefix_of_the_cover_letter() {
        let t = "From x\nSubject: [RFC PATCH 6.12 0/5] bpf: A title\n";
        assert_eq!(subject_prefix(t).as_deref(), Some("RFC PATCH 6.12"));
        assert_eq!(
            subject_prefix("Subject: [PATCH 0/2] x\n").as_deref(),
            Some("PATCH")
        );
        assert_eq!(subject_prefix("Subject: x\n"), None);
    }

    #[test]
    fn non_ascii_names_are_encoded_words() {
        assert_eq!(
            super::mime_address("\"Bj\u{f6}rn Roy Baron\" <b@x>"),
            "=?UTF-8?q?Bj=C3=B6rn_Roy_Baron?= <b@x>"
        );
        assert_eq!(super::mime_address("A <a@x>"), "A <a@x>");
    }

    #[test]
    fn recipients_end_the_headers() {
        let t = "From: A <a@x>\nSubject: [PATCH] x\n\nbody\n";
        let out = with_headers(t, &["M <m@x>".into(), "N <n@x>".into()], &["l@x".into()]).unwrap();
        assert_eq!(
            out,
            "From: A <a@x>\nSubject: [PATCH] x\nTo: M <m@x>,\n    N <n@x>\nCc: l@x\n\nbody\n"
        );
    }
}

//! Whose series it is. The patches carry the identity of the person who
//! runs `make series` (their `git config user.name`/`user.email`), and the
//! `Signed-off-by:` they add certifies the series under the DCO; nothing
//! in this repository invents an identity.
//!
//! The date is part of the series too: `make series` keeps the date of the
//! committed patches while nothing else in them changes, so regenerating an
//! unchanged series is a no-op and `make series-check` can regenerate it
//! byte for byte on another machine.

use std::path::Path;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::mailcheck::{header, mail_headers};

/// An author identity and the date the series' commits carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
    /// A date git accepts (`GIT_AUTHOR_DATE`), e.g. RFC 2822.
    pub date: String,
}

impl Author {
    /// The user's git identity, dated now. Refuses when it is not set.
    pub fn from_git_config(sh: &Shell) -> Result<Author> {
        let get = |key: &str| {
            cmd!(sh, "git config --get {key}")
                .quiet()
                .ignore_status()
                .read()
                .unwrap_or_default()
        };
        let (name, email) = (get("user.name"), get("user.email"));
        if name.trim().is_empty() || email.trim().is_empty() {
            bail!(
                "make series needs your git identity: the patches are authored and signed off \
                 by whoever writes them. Set it with\n  git config --global user.name \"Your Name\"\n  \
                 git config --global user.email you@example.org"
            );
        }
        let date = cmd!(sh, "date -R").quiet().read()?;
        Ok(Author {
            name: name.trim().to_string(),
            email: email.trim().to_string(),
            date,
        })
    }

    /// The author and date of a `git format-patch` file (its `From:` and
    /// `Date:` headers), if it has them.
    pub fn from_patch(patch: &Path) -> Result<Option<Author>> {
        let text = std::fs::read_to_string(patch)
            .with_context(|| format!("reading {}", patch.display()))?;
        Ok(parse_headers(&text))
    }

    /// `Name <email>`, as git and mail headers write it.
    pub fn ident(&self) -> String {
        format!("{} <{}>", self.name, self.email)
    }

    /// The environment that makes git commit with this identity and date.
    pub fn git_env(&self) -> [(&'static str, &str); 6] {
        [
            ("GIT_AUTHOR_NAME", &self.name),
            ("GIT_AUTHOR_EMAIL", &self.email),
            ("GIT_AUTHOR_DATE", &self.date),
            ("GIT_COMMITTER_NAME", &self.name),
            ("GIT_COMMITTER_EMAIL", &self.email),
            ("GIT_COMMITTER_DATE", &self.date),
        ]
    }
}

/// The author and date of a patch's mail headers.
fn parse_headers(text: &str) -> Option<Author> {
    let headers = mail_headers(text);
    let from = header(&headers, "From")?;
    let date = header(&headers, "Date")?;
    let (name, rest) = from.rsplit_once('<')?;
    let email = rest.strip_suffix('>')?;
    Some(Author {
        name: name.trim().trim_matches('"').to_string(),
        email: email.trim().to_string(),
        date,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_headers;

    /// git folds a long `From:` line; the identity survives the fold.
    #[test]
    fn folded_from_header() {
        let patch = "From 0123 Mon Sep 17 00:00:00 2001\nFrom: A Long Name\n <a@example.org>\n\
                     Date: Sat, 28 Nov 2026 05:35:39 +0000\nSubject: [PATCH] x\n\nbody\nFrom: no\n";
        let a = parse_headers(patch).unwrap();
        assert_eq!(a.ident(), "A Long Name <a@example.org>");
        assert_eq!(a.date, "Sat, 28 Nov 2026 05:35:39 +0000");
    }

    #[test]
    fn no_headers_no_author() {
        assert!(parse_headers("just text\n").is_none());
    }
}

//! `--filter` globs: `*` matches any run of characters (also `/`), everything
//! else matches itself. A glob must match the whole test name.

use runner_shared::glob::glob_match;

/// The selection of `--filter` arguments: no filter selects everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    globs: Vec<String>,
}

impl Filter {
    pub fn new(globs: Vec<String>) -> Self {
        Self { globs }
    }

    pub fn selects(&self, name: &str) -> bool {
        self.globs.is_empty() || self.globs.iter().any(|g| glob_match(g, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_must_match_whole_name() {
        assert!(glob_match("a/b", "a/b"));
        assert!(!glob_match("a/b", "a/bc"));
        assert!(!glob_match("a/bc", "a/b"));
        assert!(!glob_match("", "a"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn star_matches_any_run() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "obj/prog name"));
        assert!(glob_match("obj/*", "obj/x"));
        assert!(glob_match("obj/*", "obj/"));
        assert!(!glob_match("obj/*", "other/x"));
        assert!(glob_match("*lock*", "runtime/spin_lock_exact_total"));
        assert!(glob_match(
            "runtime/*_total",
            "runtime/spin_lock_exact_total"
        ));
        assert!(!glob_match(
            "runtime/*_total",
            "runtime/spin_lock_exact_totals"
        ));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("**x", "abx"));
    }

    #[test]
    fn no_filter_selects_all_and_filters_or_together() {
        assert!(Filter::default().selects("anything"));
        let f = Filter::new(vec!["a/*".into(), "runtime/*".into()]);
        assert!(f.selects("a/x"));
        assert!(f.selects("runtime/y"));
        assert!(!f.selects("b/x"));
    }
}

//! The kernel configuration: `tinyconfig` plus our fragments, then a check
//! that every option we asked for survived `olddefconfig` (an option whose
//! dependencies are not met is dropped silently by kconfig).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::arch::Arch;
use crate::key::{self, Key};
use crate::paths::Paths;
use crate::stage::{run_logged, Stage};
use crate::toolchain;

/// The fragments for `arch`, in merge order.
pub fn fragments(paths: &Paths, arch: Arch) -> Vec<PathBuf> {
    let dir = paths.repo.join("tools/config");
    vec![
        dir.join("vmtest.config"),
        dir.join(format!("{}.config", arch.name())),
    ]
}

/// Writes `obj/.config` unless the fragments and series are unchanged.
pub fn configure(
    paths: &Paths,
    arch: Arch,
    src: &Path,
    obj: &Path,
    series_key: &str,
) -> Result<String> {
    let stage = Stage::start("config");
    let frags = fragments(paths, arch);
    let mut k = Key::new("config");
    k.str(arch.name()).str(series_key);
    for f in &frags {
        k.file(f)?;
    }
    let key = k.hex();
    let stamp = obj.join(".rqspin-config-key");
    if obj.join(".config").exists() && key::read_stamp(&stamp).as_deref() == Some(key.as_str()) {
        stage.done(format!("unchanged (key {key})"));
        return Ok(key);
    }
    std::fs::create_dir_all(obj)?;
    let log = obj.with_extension("config.log");
    let _ = std::fs::remove_file(&log);
    let make = |target: &str| {
        let mut m = toolchain::kbuild(paths, src);
        m.arg(format!("O={}", obj.display()))
            .arg(format!("ARCH={}", arch.kbuild()))
            .arg(target);
        m
    };
    run_logged(make("tinyconfig"), &log, "make tinyconfig")?;
    let mut merge = std::process::Command::new(src.join("scripts/kconfig/merge_config.sh"));
    merge
        .current_dir(src)
        .arg("-m")
        .arg("-O")
        .arg(obj)
        .arg(obj.join(".config"));
    merge.args(&frags);
    merge.env("ARCH", arch.kbuild());
    run_logged(merge, &log, "merging config fragments")?;
    run_logged(make("olddefconfig"), &log, "make olddefconfig")?;
    check_survived(&frags, &obj.join(".config"), &log)?;
    key::write_stamp(&stamp, &key)?;
    stage.done(format!(
        "tinyconfig + {} fragment(s), all options present (key {key})",
        frags.len()
    ));
    Ok(key)
}

/// Every `CONFIG_X=v` and `# CONFIG_X is not set` of the fragments must be in
/// the final config. When several fragments set an option, the last one
/// wins, as in merge_config.sh (the arch fragment may override vmtest's).
fn check_survived(frags: &[PathBuf], config: &Path, log: &Path) -> Result<()> {
    let final_cfg = std::fs::read_to_string(config)?;
    let mut wanted: Vec<String> = Vec::new();
    for frag in frags {
        for line in std::fs::read_to_string(frag)?.lines() {
            let line = line.trim();
            if line.starts_with("CONFIG_")
                || (line.starts_with("# CONFIG_") && line.ends_with(" is not set"))
            {
                wanted.retain(|w| option_name(w) != option_name(line));
                wanted.push(line.to_string());
            }
        }
    }
    let mut lost = Vec::new();
    for line in &wanted {
        if final_cfg.lines().any(|l| l == line) {
            continue;
        }
        let name = option_name(line);
        let got = final_cfg
            .lines()
            .find(|l| option_name(l) == name)
            .unwrap_or("absent (dependencies not met, or not an option of this tree)");
        lost.push(format!("    {line}  ->  {got}"));
    }
    if !lost.is_empty() {
        bail!(
            "these config options did not survive olddefconfig:\n{}\n(log: {})",
            lost.join("\n"),
            log.display()
        );
    }
    Ok(())
}

fn option_name(line: &str) -> &str {
    let l = line.trim_start_matches("# ");
    l.split(['=', ' ']).next().unwrap_or(l)
}

#[cfg(test)]
mod tests {
    use super::option_name;

    #[test]
    fn names() {
        assert_eq!(option_name("CONFIG_RUST=y"), "CONFIG_RUST");
        assert_eq!(option_name("# CONFIG_RUST is not set"), "CONFIG_RUST");
    }
}

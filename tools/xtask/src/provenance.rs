//! When and by which command a result file was written. Every file that
//! `make results` turns into `docs/results.md` carries both, so the page can
//! say where each figure came from without anyone typing it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variables that change what a run does without showing in
/// its arguments (the Makefile exports them, clap reads some of them).
const RELEVANT_ENV: &[&str] = &["TESTS", "NOPATCHES", "VMTEST_KVM"];

/// The current time, UTC, RFC 3339 to the second (`2026-11-28T05:42:10Z`).
pub fn now_utc() -> String {
    utc_rfc3339(SystemTime::now())
}

/// `time` as UTC RFC 3339 to the second. Times before 1970 (a broken clock)
/// print as the epoch rather than failing a run that is otherwise fine.
pub fn utc_rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format_unix(secs)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`. Hand-written because a date crate
/// for one line of output is more than this tool needs; the civil-date step
/// is Howard Hinnant's `civil_from_days`, exact for the proleptic Gregorian
/// calendar.
pub fn format_unix(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month, day of the `days`-th day after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// This process's command as someone would type it again: `xtask` and its
/// arguments, preceded by the environment variables of [`RELEVANT_ENV`]
/// that are set (a `TESTS=` run is not the whole suite, and the page must
/// not hide that).
pub fn command_line() -> String {
    let env: Vec<(String, String)> = RELEVANT_ENV
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| (k.to_string(), v))
        })
        .collect();
    let args: Vec<String> = std::env::args().skip(1).collect();
    format_command(&env, "xtask", &args)
}

fn format_command(env: &[(String, String)], program: &str, args: &[String]) -> String {
    let mut words: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    words.push(program.to_string());
    words.extend(args.iter().map(|a| quote(a)));
    words.join(" ")
}

/// Single-quotes a word for the shell when it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_rfc3339() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century leap year), 12:34:56.
        assert_eq!(format_unix(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(format_unix(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(format_unix(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn commands_quote_what_needs_it() {
        let env = [("TESTS".to_string(), "kf_spin_lock/*".to_string())];
        let args = [
            "vmtest".to_string(),
            "--arch".to_string(),
            "x86_64".to_string(),
        ];
        assert_eq!(
            format_command(&env, "xtask", &args),
            "TESTS='kf_spin_lock/*' xtask vmtest --arch x86_64"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}

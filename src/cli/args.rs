//! The ranges of `qk`'s numeric flags and the value parsers that enforce them. A value
//! outside its range is a usage error from clap (exit 2, naming the flag and the range),
//! never a crash, an allocation the machine cannot make, or a run that checks nothing.

/// Most ops in one generated history (`--ops` of `qk soak` and `qk replay`).
pub const OPS_MAX: u64 = 100_000;
/// Most ops in one exhaustive history (`qk soak --exhaustive --max-ops`).
pub const EXHAUSTIVE_OPS_MAX: u64 = 1_000;
/// Most pending units enumerated as every subset (`qk soak --subset-max`): at most
/// 2^12 = 4096 crash states per crash point.
pub const SUBSET_UNITS_MAX: u64 = 12;
/// Longest wall-time budget (`qk soak --seconds`): 30 days.
pub const SECONDS_MAX: f64 = 30.0 * 24.0 * 3600.0;
/// Most seeds `qk selftest --seeds-max` tries on one planted bug.
pub const SELFTEST_SEEDS_MAX: u64 = 1_000_000;

/// A whole number in `min..=max`, or the message saying why not.
fn count_in(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|e| format!("expected a whole number in {min}..={max}: {e}"))?;
    if n < min || n > max {
        return Err(format!("{n} is outside the allowed range {min}..={max}"));
    }
    Ok(n)
}

/// `--ops`: ops per generated history, in `1..=OPS_MAX`.
pub fn ops(text: &str) -> Result<usize, String> {
    count_in(text, 1, OPS_MAX).map(|n| n as usize)
}

/// `--max-ops`: ops per exhaustive history, in `1..=EXHAUSTIVE_OPS_MAX`.
pub fn exhaustive_ops(text: &str) -> Result<usize, String> {
    count_in(text, 1, EXHAUSTIVE_OPS_MAX).map(|n| n as usize)
}

/// `--subset-max`: pending units enumerated as every subset, in `0..=SUBSET_UNITS_MAX`.
pub fn subset_units(text: &str) -> Result<usize, String> {
    count_in(text, 0, SUBSET_UNITS_MAX).map(|n| n as usize)
}

/// `--seeds-max`: seeds tried per planted bug, in `1..=SELFTEST_SEEDS_MAX`.
pub fn selftest_seeds(text: &str) -> Result<u64, String> {
    count_in(text, 1, SELFTEST_SEEDS_MAX)
}

/// `--seconds`: a finite wall-time budget greater than 0 and at most [`SECONDS_MAX`]
/// (30 days); NaN and infinities are refused.
pub fn seconds(text: &str) -> Result<f64, String> {
    let secs: f64 =
        text.trim().parse().map_err(|e| format!("expected a number of seconds: {e}"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= SECONDS_MAX) {
        return Err(format!(
            "{text} is outside the allowed range: more than 0 and at most {SECONDS_MAX} \
             (30 days)"
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_held_to_their_range() {
        assert_eq!(ops("1"), Ok(1));
        assert_eq!(ops("100000"), Ok(100_000));
        for bad in ["0", "100001", "4294967296", "18446744073709551615", "-1", "x", ""] {
            assert!(ops(bad).is_err(), "--ops {bad:?} accepted");
        }
        assert!(exhaustive_ops("0").unwrap_err().contains("1..=1000"));
        assert_eq!(subset_units("0"), Ok(0));
        assert!(subset_units("13").unwrap_err().contains("0..=12"));
        assert!(selftest_seeds("0").is_err());
        assert_eq!(selftest_seeds("200"), Ok(200));
    }

    #[test]
    fn seconds_must_be_a_positive_finite_budget() {
        assert_eq!(seconds("0.5"), Ok(0.5));
        assert_eq!(seconds("2592000"), Ok(SECONDS_MAX));
        for bad in ["0", "-1", "1e20", "2592000.5", "nan", "inf", "-inf", "soon"] {
            assert!(seconds(bad).is_err(), "--seconds {bad:?} accepted");
        }
    }
}

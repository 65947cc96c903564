//! Time to match: how long mentees waited from submission until their tandem formed, as a
//! median, a 90th percentile, and series per day and per matching round.

use std::collections::BTreeMap;

use serde::Serialize;

use tandem_domain::time::DAY_MS;

/// One tandem's wait, as the figures need it.
#[derive(Debug, Clone)]
pub(crate) struct Wait {
    /// Unix ms when the tandem formed.
    pub formed_at_ms: i64,
    /// The round that proposed the pair.
    pub round_id: String,
    /// When that round started (Unix ms); 0 when the round is unknown.
    pub round_started_at_ms: i64,
    /// Milliseconds from the mentee's submission until the tandem formed.
    pub wait_ms: i64,
}

/// One point of a time-to-match series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// What the point stands for: a UTC date (`2025-03-14`) or a round id.
    pub label: String,
    /// Start of the day, or when the round started (Unix ms).
    pub at_ms: i64,
    /// Tandems in this bucket.
    pub tandems: u64,
    pub median_ms: i64,
    pub p90_ms: i64,
}

/// Time from a mentee's submission until their tandem formed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeToMatch {
    /// Tandems measured.
    pub tandems: u64,
    /// `None` while no tandem formed.
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    /// Per UTC day the tandems formed, oldest first, at most [`MAX_POINTS`] days.
    pub by_day: Vec<SeriesPoint>,
    /// Per matching round that proposed the pairs, oldest first, at most [`MAX_POINTS`] rounds.
    pub by_round: Vec<SeriesPoint>,
    /// Every tandem's wait in milliseconds, shortest first: the metrics' histogram.
    #[serde(skip)]
    pub waits_ms: Vec<i64>,
}

/// Longest series kept (the newest points).
pub const MAX_POINTS: usize = 30;

/// Returns the `p`-th percentile (0 < p ≤ 100) of sorted values by the nearest-rank method:
/// the smallest value with at least `p` percent of all values at or below it.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // ceil(p/100 * n) as an integer, at least rank 1.
    let rank = (usize::try_from(p).unwrap_or(100) * n).div_ceil(100).max(1);
    sorted.get(rank.min(n) - 1).copied()
}

/// Returns the date (`YYYY-MM-DD`, UTC) of a Unix ms timestamp.
pub fn utc_date(ms: i64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = ms.div_euclid(DAY_MS);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn point(label: String, at_ms: i64, mut waits: Vec<i64>) -> SeriesPoint {
    waits.sort_unstable();
    SeriesPoint {
        label,
        at_ms,
        tandems: waits.len() as u64,
        median_ms: percentile(&waits, 50).unwrap_or(0),
        p90_ms: percentile(&waits, 90).unwrap_or(0),
    }
}

fn newest(mut points: Vec<SeriesPoint>) -> Vec<SeriesPoint> {
    points.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.label.cmp(&b.label)));
    let skip = points.len().saturating_sub(MAX_POINTS);
    points.split_off(skip)
}

/// Returns the time-to-match figures of the given tandems.
pub(crate) fn time_to_match(waits: &[Wait]) -> TimeToMatch {
    let mut all: Vec<i64> = waits.iter().map(|w| w.wait_ms.max(0)).collect();
    all.sort_unstable();

    let mut days: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut rounds: BTreeMap<(&str, i64), Vec<i64>> = BTreeMap::new();
    for w in waits {
        let wait = w.wait_ms.max(0);
        days.entry(w.formed_at_ms.div_euclid(DAY_MS))
            .or_default()
            .push(wait);
        rounds
            .entry((w.round_id.as_str(), w.round_started_at_ms))
            .or_default()
            .push(wait);
    }
    let by_day = days
        .into_iter()
        .map(|(day, waits)| point(utc_date(day * DAY_MS), day * DAY_MS, waits))
        .collect();
    let by_round = rounds
        .into_iter()
        .map(|((id, at), waits)| point(id.to_owned(), at, waits))
        .collect();
    TimeToMatch {
        tandems: all.len() as u64,
        median_ms: percentile(&all, 50),
        p90_ms: percentile(&all, 90),
        by_day: newest(by_day),
        by_round: newest(by_round),
        waits_ms: all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 90), Some(7));
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&v, 100), Some(10));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3], 90), Some(3));
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(1_709_251_199_999), "2024-02-29");
        assert_eq!(utc_date(1_735_689_600_000), "2025-01-01");
        assert_eq!(utc_date(-1), "1969-12-31");
    }

    fn wait(day: i64, round: &str, wait_ms: i64) -> Wait {
        Wait {
            formed_at_ms: 1_735_689_600_000 + day * DAY_MS + 3_600_000,
            round_id: round.to_owned(),
            round_started_at_ms: 1_735_689_600_000 + day * DAY_MS,
            wait_ms,
        }
    }

    #[test]
    fn series_group_by_day_and_round() {
        let waits = [
            wait(0, "r1", 1000),
            wait(0, "r1", 3000),
            wait(0, "r1", 2000),
            wait(2, "r2", 10_000),
        ];
        let t = time_to_match(&waits);
        assert_eq!(t.tandems, 4);
        assert_eq!(t.median_ms, Some(2000));
        assert_eq!(t.p90_ms, Some(10_000));
        assert_eq!(t.by_day.len(), 2);
        assert_eq!(t.by_day[0].label, "2025-01-01");
        assert_eq!((t.by_day[0].tandems, t.by_day[0].median_ms), (3, 2000));
        assert_eq!(t.by_day[1].label, "2025-01-03");
        let rounds: Vec<(&str, u64, i64)> = t
            .by_round
            .iter()
            .map(|p| (p.label.as_str(), p.tandems, p.p90_ms))
            .collect();
        assert_eq!(rounds, [("r1", 3, 3000), ("r2", 1, 10_000)]);
    }

    #[test]
    fn series_keep_the_newest_points() {
        let waits: Vec<Wait> = (0..40).map(|d| wait(d, &format!("r{d}"), d)).collect();
        let t = time_to_match(&waits);
        assert_eq!(t.by_day.len(), MAX_POINTS);
        assert_eq!(t.by_round.len(), MAX_POINTS);
        assert_eq!(t.by_round[0].label, "r10");
        assert_eq!(t.by_round[MAX_POINTS - 1].label, "r39");
    }

    #[test]
    fn no_tandems_give_no_figures() {
        let t = time_to_match(&[]);
        assert_eq!((t.tandems, t.median_ms, t.p90_ms), (0, None, None));
        assert!(t.by_day.is_empty() && t.by_round.is_empty());
    }
}

//! When a failed job runs again: a fixed schedule spread by jitter, so that a burst of failures
//! (an SMTP server down for a minute) does not come back as one burst.

use chrono::TimeDelta;

/// Email: delay after the n-th failed attempt (1-based). Eight attempts span about a day.
pub const EMAIL: &[i64] = &[15, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 14 * 3600];

/// Webhooks, as Standard Webhooks and Svix retry: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h —
/// eight attempts over about 27 hours.
pub const WEBHOOK: &[i64] = &[5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600];

/// The delay before attempt `failed + 1` on `schedule`, ±20 % jitter from `random` (any u32).
pub fn delay_after(schedule: &[i64], failed: i32, random: u32) -> TimeDelta {
    let index = usize::try_from(failed.max(1) - 1).unwrap_or(0);
    let base = schedule.get(index).or(schedule.last()).copied().unwrap_or(60) * 1000;
    // random / u32::MAX ∈ [0, 1] → factor ∈ [0.8, 1.2]
    let spread = base / 5;
    let offset = (i64::from(random) * 2 * spread) / i64::from(u32::MAX) - spread;
    TimeDelta::milliseconds(base + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_within_its_jitter() {
        for (failed, seconds) in [(1, 15), (2, 60), (7, 14 * 3600), (12, 14 * 3600)] {
            for random in [0, u32::MAX / 2, u32::MAX] {
                let delay = delay_after(EMAIL, failed, random).num_milliseconds();
                assert!(
                    delay >= seconds * 800 && delay <= seconds * 1200,
                    "{failed}: {delay}"
                );
            }
        }
        let total: i64 = EMAIL.iter().sum();
        assert!((20 * 3600..28 * 3600).contains(&total), "about a day: {total} s");
    }

    #[test]
    fn webhooks_follow_the_standard_webhooks_schedule() {
        let seconds: Vec<i64> = (1..=7)
            .map(|failed| (delay_after(WEBHOOK, failed, u32::MAX / 2).num_milliseconds() + 500) / 1000)
            .collect();
        assert_eq!(seconds, [5, 300, 1800, 7200, 18000, 36000, 36000]);
    }
}

//! Axis scales and tick values: round ticks (1, 2 or 5 × 10^k), their labels, and the plotters
//! coordinate that draws exactly those ticks.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// How an axis places its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Evenly spaced values, from zero.
    Linear,
    /// Evenly spaced powers (the drawing coordinate is log10 of the value).
    Log,
}

impl Scale {
    /// The drawing coordinate of a value.
    pub(crate) fn coord_of(self, value: f64) -> f64 {
        match self {
            Scale::Linear => value,
            Scale::Log => value.log10(),
        }
    }

    /// The value at a drawing coordinate.
    pub(crate) fn value_at(self, coord: f64) -> f64 {
        match self {
            Scale::Linear => coord,
            Scale::Log => 10f64.powf(coord),
        }
    }
}

/// A linear drawing coordinate from `range.start` to `range.end` whose tick marks and grid lines are
/// exactly `ticks` (values in the coordinate, e.g. log10 of the data on a log axis).
#[derive(Debug, Clone)]
pub(crate) struct Ticked {
    /// The coordinate's span.
    pub(crate) range: Range<f64>,
    /// Where the ticks go.
    pub(crate) ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let share = if span > 0.0 { (value - self.range.start) / span } else { 0.5 };
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// About `count` round ticks covering `0..=max` (multiples of 1, 2 or 5 × 10^k), the last one at
/// or above `max`.
pub(crate) fn linear_ticks(max: f64, count: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let raw = max / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let last = (max / step - 1e-9).ceil().max(1.0) as i64;
    (0..=last).map(|i| i as f64 * step).collect()
}

/// Round ticks covering `min..=max` on a log axis: the decades 10^k around the values, with 2 and 5 ×
/// 10^k between them when the range spans three decades or fewer.
pub(crate) fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let (lo, hi) = (min.max(f64::MIN_POSITIVE).log10().floor() as i32, max.max(min).log10().ceil() as i32);
    let hi = hi.max(lo + 1);
    let steps: &[f64] = if hi - lo <= 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut ticks: Vec<f64> = (lo..hi).flat_map(|k| steps.iter().map(move |m| m * 10f64.powi(k))).collect();
    ticks.push(10f64.powi(hi));
    ticks
}

/// A tick's label: the shortest plain decimal that shows the value to 3 significant digits
/// (`0.5`, `20`, `2048`, `0.125`).
pub(crate) fn tick_label(value: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let digits = (2 - value.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{value:.digits$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_round(v: f64) -> bool {
        if v == 0.0 {
            return true;
        }
        let mantissa = v / 10f64.powf(v.log10().floor());
        [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-9)
    }

    #[test]
    fn linear_ticks_are_round_multiples_covering_the_maximum() {
        for max in [862.8 * 1.1, 3.7, 0.042, 1.0, 57.0] {
            let ticks = linear_ticks(max, 5);
            assert_eq!(ticks[0], 0.0);
            assert!(*ticks.last().unwrap() >= max, "{max}: {ticks:?}");
            assert!(ticks.len() >= 3 && ticks.len() <= 11, "{max}: {ticks:?}");
            let step = ticks[1];
            assert!(is_round(step), "{max}: step {step}");
            assert!(ticks.iter().enumerate().all(|(i, t)| (t - i as f64 * step).abs() < 1e-9 * step.max(1.0)));
        }
    }

    #[test]
    fn log_ticks_are_one_two_five_per_decade_around_the_values() {
        assert_eq!(log_ticks(0.44, 2094.7), vec![0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]);
        assert_eq!(log_ticks(3.0, 40.0), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        assert!(log_ticks(0.013, 7.0).iter().all(|t| is_round(*t)));
    }

    #[test]
    fn tick_labels_are_short_plain_decimals() {
        let labels: Vec<String> =
            [0.0, 0.1, 0.5, 2.0, 20.0, 400.0, 2048.0, 32768.0, 0.125, 1e4].iter().map(|v| tick_label(*v)).collect();
        assert_eq!(labels, ["0", "0.1", "0.5", "2", "20", "400", "2048", "32768", "0.125", "10000"]);
    }

    #[test]
    fn log_scale_round_trips_through_its_coordinate() {
        for v in [0.5, 512.0, 32768.0] {
            assert!((Scale::Log.value_at(Scale::Log.coord_of(v)) - v).abs() < 1e-9 * v);
            assert_eq!(Scale::Linear.coord_of(v), v);
        }
    }
}

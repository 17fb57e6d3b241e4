//! The trend of a sampled figure: an ordinary least-squares line through
//! its samples after the warm-up ([`least_squares`]), and the figures the
//! report gives for it ([`series`]).

use crate::soak::model::Series;

/// A line fitted through points `(t, y)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    /// Per unit of `t` (per second here).
    pub slope: f64,
    pub intercept: f64,
    /// The slope's standard error (from the residuals): how far noise
    /// alone moves it.
    pub slope_stderr: f64,
}

/// The least-squares line through `points`; None for fewer than three
/// points or all at one `t`.
pub fn least_squares(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / nf;
    // Centred sums: no cancellation with large t or y (RSS in bytes).
    let (mut stt, mut sty) = (0.0, 0.0);
    for &(t, y) in points {
        stt += (t - mean_t) * (t - mean_t);
        sty += (t - mean_t) * (y - mean_y);
    }
    if stt <= 0.0 || !stt.is_finite() {
        return None;
    }
    let slope = sty / stt;
    let intercept = mean_y - slope * mean_t;
    let residuals: f64 = points
        .iter()
        .map(|&(t, y)| (y - intercept - slope * t).powi(2))
        .sum();
    Some(Line {
        slope,
        intercept,
        slope_stderr: (residuals / (nf - 2.0) / stt).sqrt(),
    })
}

/// The figures of one sampled series: `baseline` (the soak's first
/// sample) and `points` after the warm-up, in time order; None where no
/// line can be fitted.
pub fn series(name: &str, unit: &str, baseline: f64, points: &[(f64, f64)]) -> Option<Series> {
    let line = least_squares(points)?;
    let (first, last) = (points.first()?, points.last()?);
    let values = points.iter().map(|p| p.1);
    let window_s = last.0 - first.0;
    Some(Series {
        name: name.into(),
        unit: unit.into(),
        samples: points.len(),
        window_s,
        baseline,
        start: first.1,
        end: last.1,
        min: values.clone().fold(f64::INFINITY, f64::min),
        max: values.clone().fold(f64::NEG_INFINITY, f64::max),
        mean: values.sum::<f64>() / points.len() as f64,
        slope_per_h: line.slope * 3600.0,
        slope_stderr_per_h: line.slope_stderr * 3600.0,
        growth: line.slope * window_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise in [-1, 1) (a linear congruential generator).
    fn noise(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    #[test]
    fn a_line_is_fitted_exactly() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 0.5 * i as f64)).collect();
        let l = least_squares(&points).unwrap();
        assert!((l.slope - 0.5).abs() < 1e-12, "{l:?}");
        assert!((l.intercept - 3.0).abs() < 1e-12, "{l:?}");
        assert!(l.slope_stderr < 1e-9, "{l:?}");
    }

    #[test]
    fn too_few_points_or_one_instant_fit_nothing() {
        assert!(least_squares(&[]).is_none());
        assert!(least_squares(&[(0.0, 1.0), (1.0, 2.0)]).is_none());
        assert!(least_squares(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]).is_none());
    }

    #[test]
    fn big_values_keep_their_precision() {
        // RSS in bytes at seconds since the start: 4 GiB, flat.
        let points: Vec<(f64, f64)> = (0..600)
            .map(|i| (i as f64, 4.0 * 1024.0f64.powi(3)))
            .collect();
        let s = series("memory", "bytes", 0.0, &points).unwrap();
        assert_eq!(s.growth, 0.0);
        assert_eq!(s.slope_per_h, 0.0);
    }

    #[test]
    fn noise_about_a_flat_level_fits_a_slope_within_its_error() {
        let mut seed = 7;
        let points: Vec<(f64, f64)> = (0..480)
            .map(|i| (i as f64, 360.0 + 3.0 * noise(&mut seed)))
            .collect();
        let s = series("fds", "count", 350.0, &points).unwrap();
        assert!(s.slope_per_h.abs() < 4.0 * s.slope_stderr_per_h, "{s:?}");
        assert!(s.growth.abs() < 1.0, "{s:?}");
        assert!((s.mean - 360.0).abs() < 0.5, "{s:?}");
        assert!(s.min >= 357.0 && s.max < 363.0, "{s:?}");
        assert_eq!((s.samples, s.window_s, s.baseline), (480, 479.0, 350.0));
    }

    #[test]
    fn a_slow_leak_under_noise_is_found() {
        // 100 connections/s leaking 64 B each, under ±256 KiB of noise.
        let mut seed = 11;
        let points: Vec<(f64, f64)> = (0..480)
            .map(|i| {
                let t = i as f64;
                (t, 8e6 + 6400.0 * t + 262_144.0 * noise(&mut seed))
            })
            .collect();
        let s = series("memory", "bytes", 0.0, &points).unwrap();
        let per_h = 6400.0 * 3600.0;
        assert!((s.slope_per_h - per_h).abs() < 0.05 * per_h, "{s:?}");
        assert!((s.growth - 6400.0 * 479.0).abs() < 0.05 * 6400.0 * 479.0);
    }
}

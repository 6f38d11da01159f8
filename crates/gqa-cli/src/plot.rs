//! A small self-contained SVG line plot for `gqa bench`: one x axis (sequence lengths), one line per
//! series, missing points skipped.

use std::fmt::Write as _;

/// The lines' colours, in series order.
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// A plot: x values, and per series a name and one y value (or none) per x.
#[derive(Debug, Clone)]
pub(crate) struct Plot {
    /// The title line, with the y quantity.
    pub(crate) title: String,
    /// A second line (the adapter).
    pub(crate) subtitle: String,
    /// Place x on a log2 scale (else linear).
    pub(crate) log_x: bool,
    /// The x values (sequence lengths), labelled on the axis.
    pub(crate) x: Vec<usize>,
    /// (name, y per x).
    pub(crate) series: Vec<(String, Vec<Option<f64>>)>,
}

impl Plot {
    /// The SVG document.
    pub(crate) fn to_svg(&self) -> String {
        let (w, h, pad) = (640.0, 400.0, 60.0);
        let xs: Vec<f64> =
            self.x.iter().map(|&x| if self.log_x { (x.max(1) as f64).log2() } else { x as f64 }).collect();
        let (x0, x1) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        let x0 = if self.log_x { x0 } else { 0.0 };
        let ymax =
            self.series.iter().flat_map(|(_, ys)| ys.iter().flatten()).fold(0.0f64, |a, b| a.max(*b)).max(1e-9) * 1.1;
        let px = |x: f64| pad + (x - x0) / (x1 - x0).max(1e-9) * (w - 2.0 * pad);
        let py = |y: f64| h - pad - y / ymax * (h - 2.0 * pad);
        let mut lines = String::new();
        for (i, (name, ys)) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<(f64, f64)> = xs.iter().zip(ys).filter_map(|(x, y)| y.map(|y| (px(*x), py(y)))).collect();
            let path: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = write!(
                lines,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            for (x, y) in &points {
                let _ = write!(lines, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{color}"/>"#);
            }
            let _ = write!(
                lines,
                r#"<text x="{}" y="{}" font-size="12" text-anchor="end" fill="{color}">{}</text>"#,
                w - pad,
                pad + 16.0 * i as f64,
                escape(name)
            );
        }
        let mut ticks = String::new();
        for (x, label) in xs.iter().zip(&self.x) {
            let _ = write!(
                ticks,
                r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{label}</text>"#,
                px(*x),
                h - pad + 16.0
            );
        }
        for i in 0..=4 {
            let y = ymax * i as f64 / 4.0;
            let _ = write!(
                ticks,
                r#"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{y:.2}</text>"#,
                pad - 6.0,
                py(y) + 4.0
            );
        }
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">
<rect width="100%" height="100%" fill="white"/>
<text x="{pad}" y="24" font-size="14">{title}</text>
<text x="{pad}" y="40" font-size="11">{subtitle}</text>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="black"/>
{ticks}{lines}
</svg>
"##,
            title = escape(&self.title),
            subtitle = escape(&self.subtitle),
            b = h - pad,
            r = w - pad,
        )
    }
}

/// Text safe inside SVG elements.
fn escape(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '<' | '>' | '&')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_every_point_and_skips_missing_ones() {
        let plot = Plot {
            title: "t <x>".into(),
            subtitle: "adapter".into(),
            log_x: false,
            x: vec![512, 2048, 8192],
            series: vec![
                ("GPU".into(), vec![Some(1.0), Some(2.0), Some(5.0)]),
                ("CPU".into(), vec![Some(3.0), None, None]),
            ],
        };
        let svg = plot.to_svg();
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(">8192<") && svg.contains("t x") && svg.starts_with("<svg"));
    }
}

//! Draws a [`Plot`] on any plotters backend: x on a log scale with a tick at every x value, y on the
//! plot's scale with round ticks, axis titles, a solid line with markers per measured series, a dashed
//! grey line per bound, and a legend.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Scale, Ticked, linear_ticks, log_ticks, tick_label};
use super::font::FAMILY;
use super::{Plot, PlotError, SeriesKind};

/// The measured series' colours, in order (blue, red, green, orange, purple, brown).
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The bounds' colour.
const BOUND: RGBColor = RGBColor(110, 110, 110);

/// The grid's colour.
const GRID: RGBColor = RGBColor(225, 225, 225);

/// Headroom above a linear y axis's largest value, for the legend.
const LINEAR_HEADROOM: f64 = 1.3;

/// The ticks `count` a linear axis aims at.
const LINEAR_TICKS: usize = 6;

/// Pixels above the chart (the title and subtitle).
const MARGIN_TOP: u32 = 64;

/// Pixels left of the y axis's labels.
const MARGIN_LEFT: u32 = 12;

/// The y axis's labels and title.
const Y_LABEL_AREA: u32 = 76;

/// The legend's text size.
const LEGEND_TEXT: f64 = 15.0;

/// Draws `plot` with `backend` and presents it.
pub(super) fn draw<DB: DrawingBackend>(plot: &Plot, backend: DB) -> Result<(), PlotError> {
    let root = backend.into_drawing_area();
    draw_on(plot, &root).map_err(|e| PlotError::Draw(e.to_string()))?
}

/// The drawing itself; the outer result carries the backend's errors.
fn draw_on<DB: DrawingBackend>(
    plot: &Plot,
    root: &DrawingArea<DB, Shift>,
) -> Result<Result<(), PlotError>, DrawingAreaErrorKind<DB::ErrorType>> {
    let scale = plot.y_scale;
    let usable = |y: f64| y.is_finite() && (scale == Scale::Linear || y > 0.0);
    let xs: Vec<f64> = plot.x.iter().map(|&x| x.max(1) as f64).collect();
    let ys: Vec<f64> = plot.series.iter().flat_map(|s| s.y.iter().flatten().copied()).filter(|y| usable(*y)).collect();
    let (Some(x_min), Some(x_max)) = (xs.iter().copied().reduce(f64::min), xs.iter().copied().reduce(f64::max)) else {
        return Ok(Err(PlotError::Empty));
    };
    let (Some(y_min), Some(y_max)) = (ys.iter().copied().reduce(f64::min), ys.iter().copied().reduce(f64::max)) else {
        return Ok(Err(PlotError::Empty));
    };

    // x: log10 coordinates, a margin on each side so that the end labels stay inside.
    let (x_lo, x_hi) = (x_min.log10(), x_max.log10());
    let margin = if x_hi > x_lo { (x_hi - x_lo) * 0.08 } else { 0.5 };
    let x_ticks: Vec<f64> = xs.iter().map(|x| x.log10()).collect();
    let x_range = Ticked { range: (x_lo - margin)..(x_hi + margin), ticks: x_ticks };
    let y_ticks: Vec<f64> = match scale {
        Scale::Linear => linear_ticks(y_max * LINEAR_HEADROOM, LINEAR_TICKS),
        Scale::Log => log_ticks(y_min, y_max),
    }
    .into_iter()
    .map(|t| scale.coord_of(t))
    .collect();
    let (y_lo, y_hi) = (y_ticks[0], y_ticks[y_ticks.len() - 1]);
    let y_range = Ticked { range: y_lo..y_hi, ticks: y_ticks };

    root.fill(&WHITE)?;
    root.draw(&Text::new(plot.title.clone(), (20, 12), (FAMILY, 22).into_font()))?;
    root.draw(&Text::new(plot.subtitle.clone(), (20, 40), (FAMILY, 14).into_font().color(&BOUND)))?;
    let mut chart = ChartBuilder::on(root)
        .margin_top(MARGIN_TOP)
        .margin_left(MARGIN_LEFT)
        .margin_right(28)
        .margin_bottom(12)
        .x_label_area_size(56)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x_range, y_range)?;
    let x_label = |c: &f64| tick_label(10f64.powf(*c).round());
    let y_label = |c: &f64| tick_label(scale.value_at(*c));
    chart
        .configure_mesh()
        .x_desc(plot.x_title.as_str())
        .y_desc(plot.y_title.as_str())
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .draw()?;

    let mut measured = 0;
    let mut legend = Vec::new();
    for series in &plot.series {
        let points: Vec<(f64, f64)> = xs
            .iter()
            .zip(&series.y)
            .filter_map(|(x, y)| y.filter(|y| usable(*y)).map(|y| (x.log10(), scale.coord_of(y))))
            .collect();
        if points.is_empty() {
            continue;
        }
        match series.kind {
            SeriesKind::Measured => {
                let color = PALETTE[measured % PALETTE.len()];
                measured += 1;
                chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?;
                legend.push((series.name.as_str(), color, false));
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
            }
            SeriesKind::Bound => {
                chart.draw_series(DashedLineSeries::new(points.iter().copied(), 8, 5, BOUND.stroke_width(2)))?;
                legend.push((series.name.as_str(), BOUND, true));
            }
        }
    }
    draw_legend(root, &legend)?;
    root.present()?;
    Ok(Ok(()))
}

/// The legend, in the chart's upper-left corner: per line a sample (solid, or dashed for a bound) and
/// its name. Drawn here rather than by plotters, whose legend measures its text with the font even
/// on the SVG backend.
fn draw_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[(&str, RGBColor, bool)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if entries.is_empty() {
        return Ok(());
    }
    let (left, top) = ((MARGIN_LEFT + Y_LABEL_AREA) as i32 + 12, MARGIN_TOP as i32 + 10);
    let line_height = 22;
    let longest = entries.iter().map(|(name, ..)| name.chars().count()).max().unwrap_or(0);
    let width = 48 + super::fixed_metrics::text_width(longest, LEGEND_TEXT).round() as i32;
    let height = 10 + line_height * entries.len() as i32;
    root.draw(&Rectangle::new([(left, top), (left + width, top + height)], WHITE.mix(0.9).filled()))?;
    root.draw(&Rectangle::new([(left, top), (left + width, top + height)], BOUND.mix(0.5).stroke_width(1)))?;
    let text = (FAMILY, LEGEND_TEXT).into_font().into_text_style(root).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (name, color, dashed)) in entries.iter().enumerate() {
        let y = top + 5 + line_height * i as i32 + line_height / 2;
        let (x0, x1) = (left + 8, left + 34);
        if *dashed {
            for x in [x0, x0 + 10, x0 + 20] {
                root.draw(&PathElement::new(vec![(x, y), (x + 6, y)], color.stroke_width(2)))?;
            }
        } else {
            root.draw(&PathElement::new(vec![(x0, y), (x1, y)], color.stroke_width(2)))?;
            root.draw(&Circle::new(((x0 + x1) / 2, y), 4, color.filled()))?;
        }
        root.draw(&Text::new(name.to_string(), (x1 + 8, y), text.clone()))?;
    }
    Ok(())
}

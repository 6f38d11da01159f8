//! The plots of `gqa bench`, drawn with plotters: one x axis (the key counts, log scale), one line per
//! measured series (GPU, CPU oracle) and dashed lines for the roofline bounds, with axis titles,
//! round ticks and a legend. SVG always (its text needs no font); PNG where a TrueType font is found
//! ([`font`]).

mod axis;
mod draw;
mod files;
mod fixed_metrics;
mod font;
#[cfg(test)]
mod tests;

pub(crate) use axis::Scale;
pub(crate) use files::PlotFiles;

/// The plots' size in pixels.
pub(crate) const SIZE: (u32, u32) = (800, 500);

/// What a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeriesKind {
    /// Timed: a solid line with a marker on every point.
    Measured,
    /// A bound from a probe (the roofline): a dashed grey line.
    Bound,
}

/// One line of a plot: a name for the legend and one y value (or none) per x.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// The legend's text.
    pub(crate) name: String,
    /// What the line is.
    pub(crate) kind: SeriesKind,
    /// One value per x; missing points are skipped.
    pub(crate) y: Vec<Option<f64>>,
}

/// A line plot.
#[derive(Debug, Clone)]
pub(crate) struct Plot {
    /// The title, above the chart.
    pub(crate) title: String,
    /// A second line (the adapter).
    pub(crate) subtitle: String,
    /// The x axis's title, with its unit.
    pub(crate) x_title: String,
    /// The y axis's title, with its unit.
    pub(crate) y_title: String,
    /// The y axis's scale (x is always log: the key counts grow by powers).
    pub(crate) y_scale: Scale,
    /// The x values (key counts), each labelled on the axis.
    pub(crate) x: Vec<usize>,
    /// The lines, in legend order.
    pub(crate) series: Vec<Series>,
}

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlotError {
    /// The plot has no x value or no y value to draw.
    #[error("nothing to plot")]
    Empty,
    /// The drawing backend failed.
    #[error("drawing the plot: {0}")]
    Draw(String),
    /// No font for a PNG's text.
    #[error("{0}")]
    NoFont(&'static str),
    /// Encoding the PNG.
    #[error("encoding the PNG: {0}")]
    Png(String),
}

impl Plot {
    /// The SVG document; the same on every machine (its text is laid out by the viewer).
    pub(crate) fn to_svg(&self) -> Result<String, PlotError> {
        let mut svg = String::new();
        {
            let backend = fixed_metrics::FixedMetrics(plotters::backend::SVGBackend::with_string(&mut svg, SIZE));
            draw::draw(self, backend)?;
        }
        Ok(svg)
    }

    /// The PNG file's bytes, its text drawn with the font [`font::ensure_font`] registers.
    pub(crate) fn to_png(&self) -> Result<Vec<u8>, PlotError> {
        font::ensure_font().map_err(PlotError::NoFont)?;
        let (w, h) = SIZE;
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        draw::draw(self, plotters::backend::BitMapBackend::with_buffer(&mut rgb, SIZE))?;
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| PlotError::Png(e.to_string()))?;
        writer.write_image_data(&rgb).map_err(|e| PlotError::Png(e.to_string()))?;
        writer.finish().map_err(|e| PlotError::Png(e.to_string()))?;
        Ok(png)
    }
}

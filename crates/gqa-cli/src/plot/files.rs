//! Which plot files `gqa bench` writes: `--plot STEM` (STEM.svg and STEM.png), `--svg FILE`,
//! `--png FILE`.

use std::path::{Path, PathBuf};

use super::{Plot, PlotError};
use crate::error::CliError;

/// The files to write a plot to.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PlotFiles {
    /// The SVG file.
    pub(crate) svg: Option<PathBuf>,
    /// The PNG file.
    pub(crate) png: Option<PathBuf>,
    /// Whether the PNG came from `--plot` only: then a missing font skips it with a warning instead
    /// of failing.
    png_optional: bool,
}

impl PlotFiles {
    /// The files named by `--plot STEM` (STEM.svg, STEM.png), `--svg` and `--png`; an explicit file
    /// wins over the stem's.
    pub(crate) fn new(stem: Option<&Path>, svg: Option<&Path>, png: Option<&Path>) -> Self {
        let with_ext = |ext: &str| {
            stem.map(|s| {
                let mut name = s.as_os_str().to_owned();
                name.push(".");
                name.push(ext);
                PathBuf::from(name)
            })
        };
        PlotFiles {
            svg: svg.map(Path::to_path_buf).or_else(|| with_ext("svg")),
            png: png.map(Path::to_path_buf).or_else(|| with_ext("png")),
            png_optional: png.is_none(),
        }
    }

    /// Whether no plot file is asked for.
    pub(crate) fn is_empty(&self) -> bool {
        self.svg.is_none() && self.png.is_none()
    }

    /// Draws `plot` into each file. A PNG that only `--plot` asked for is skipped, with a warning on
    /// stderr, where no font is found; one named by `--png` fails instead.
    pub(crate) fn write(&self, plot: &Plot) -> Result<(), CliError> {
        let failed = |path: &Path| {
            let path = path.display().to_string();
            move |e: PlotError| CliError::Output { path, message: e.to_string() }
        };
        let write = |path: &Path, bytes: &[u8]| {
            std::fs::write(path, bytes)
                .map_err(|e| CliError::Output { path: path.display().to_string(), message: e.to_string() })
        };
        if let Some(path) = &self.svg {
            write(path, plot.to_svg().map_err(failed(path))?.as_bytes())?;
        }
        if let Some(path) = &self.png {
            match plot.to_png() {
                Ok(png) => write(path, &png)?,
                Err(PlotError::NoFont(why)) if self.png_optional => {
                    eprintln!("warning: {} not written: {why}", path.display())
                }
                Err(e) => return Err(failed(path)(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stem_names_both_files_and_explicit_files_win() {
        let files = PlotFiles::new(Some(Path::new("docs/decode-lavapipe")), None, None);
        assert_eq!(files.svg.as_deref(), Some(Path::new("docs/decode-lavapipe.svg")));
        assert_eq!(files.png.as_deref(), Some(Path::new("docs/decode-lavapipe.png")));
        let files = PlotFiles::new(Some(Path::new("out/v1.2")), Some(Path::new("a.svg")), None);
        assert_eq!(files.svg.as_deref(), Some(Path::new("a.svg")));
        assert_eq!(files.png.as_deref(), Some(Path::new("out/v1.2.png")));
        let files = PlotFiles::new(None, None, Some(Path::new("b.png")));
        assert!(files.svg.is_none() && !files.is_empty());
        assert!(PlotFiles::new(None, None, None).is_empty());
    }
}

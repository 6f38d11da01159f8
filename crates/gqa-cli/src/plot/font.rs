//! The font for a PNG's text: the bitmap backend draws glyphs itself, so it needs a TrueType file.
//! None is embedded in the binary; the first of `GQA_PLOT_FONT` and the usual system paths that
//! parses is registered once, for the process's life.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::FontStyle;

/// The family name the plots ask for.
pub(crate) const FAMILY: &str = "sans-serif";

/// The environment variable naming a .ttf/.otf file to use before the system paths.
pub(crate) const FONT_ENV: &str = "GQA_PLOT_FONT";

/// Where common systems keep a plain sans-serif TrueType font.
const SYSTEM_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The registered font's file, or why none could be registered.
static REGISTERED: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Registers the first usable font (once) and returns its file, or a sentence saying that none was found.
pub(crate) fn ensure_font() -> Result<&'static Path, &'static str> {
    let found = REGISTERED.get_or_init(|| {
        let from_env = std::env::var_os(FONT_ENV).map(PathBuf::from);
        from_env.into_iter().chain(SYSTEM_FONTS.iter().map(PathBuf::from)).find_map(register).ok_or_else(|| {
            format!(
                "no TrueType font found for the PNG's text: set {FONT_ENV} to a .ttf file (tried {})",
                SYSTEM_FONTS.join(", ")
            )
        })
    });
    found.as_deref().map_err(String::as_str)
}

/// Registers `path` as the plots' family, if it reads and parses.
fn register(path: PathBuf) -> Option<PathBuf> {
    let bytes = std::fs::read(&path).ok()?;
    // The bitmap backend keeps `&'static` font data: the bytes live as long as the process, read once.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).ok()?;
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_unparsable_file_is_not_registered() {
        assert_eq!(register(PathBuf::from("/nonexistent/font.ttf")), None);
        assert_eq!(register(PathBuf::from(env!("CARGO_MANIFEST_PATH"))), None);
    }
}

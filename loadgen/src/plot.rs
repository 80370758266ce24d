//! `plot`: latency-by-percentile curves on a log "nines" axis (0%, 90%,
//! 99%, 99.9%, ...), one line per target, as SVG and PNG (plotters).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::compare::CompareResult;
use crate::metrics::RunResult;

/// Where to look for a TrueType font (plotters draws text with it).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is neither a `run --json` nor a `compare --json` result: {1}")]
    Format(PathBuf, serde_json::Error),
    #[error("{0} has no samples for operation {1:?}")]
    Empty(String, String),
    #[error(
        "plot needs a TrueType font: install fonts-dejavu-core, or set CORECACHE_FONT to a .ttf file"
    )]
    NoFont,
    #[error("drawing: {0}")]
    Draw(String),
}

/// One line of the plot: (nines, latency in µs).
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Reads result files; a compare result contributes one line per target.
pub fn load(files: &[PathBuf], op: &str) -> Result<Vec<Series>, PlotError> {
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| PlotError::Read(f.clone(), e))?;
        let runs: Vec<RunResult> = match serde_json::from_slice::<CompareResult>(&bytes) {
            Ok(c) => c.merged,
            Err(_) => vec![
                serde_json::from_slice::<RunResult>(&bytes)
                    .map_err(|e| PlotError::Format(f.clone(), e))?,
            ],
        };
        for r in runs {
            let curve = r.ops.get(op).map(|o| o.curve.clone()).unwrap_or_default();
            if curve.is_empty() {
                return Err(PlotError::Empty(r.name, op.to_string()));
            }
            out.push(Series {
                name: r.name,
                points: curve
                    .iter()
                    .map(|&(n, ns)| (n, (ns as f64 / 1e3).max(0.001)))
                    .collect(),
            });
        }
    }
    Ok(out)
}

fn ensure_font() -> Result<(), PlotError> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        let from_env = std::env::var("CORECACHE_FONT").ok();
        let candidates = from_env
            .iter()
            .map(String::as_str)
            .chain(FONT_PATHS.iter().copied());
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // plotters keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    });
    if ok { Ok(()) } else { Err(PlotError::NoFont) }
}

/// "99.9%" for 3 nines; fractional nines get enough digits to differ.
pub fn nines_label(nines: f64) -> String {
    let pct = 100.0 * (1.0 - 10f64.powf(-nines));
    let digits = (nines.ceil() as usize).saturating_sub(2);
    format!("{pct:.digits$}%")
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    series: &[Series],
    title: &str,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError::Draw(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let max_x = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max)
        .ceil();
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 28))
        .margin(20)
        // Room for the last percentile label at the right edge.
        .margin_right(50)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..max_x, (lo * 0.8..hi * 1.25).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(max_x as usize + 1)
        .x_label_formatter(&|x| nines_label(*x))
        .y_label_formatter(&|y| format!("{y}"))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

pub fn render_svg(series: &[Series], title: &str, path: &Path) -> Result<(), PlotError> {
    ensure_font()?;
    draw(
        SVGBackend::new(path, (1024, 640)).into_drawing_area(),
        series,
        title,
    )
}

pub fn render_png(series: &[Series], title: &str, path: &Path) -> Result<(), PlotError> {
    ensure_font()?;
    draw(
        BitMapBackend::new(path, (1024, 640)).into_drawing_area(),
        series,
        title,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_labels() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(5.0), "99.999%");
    }

    #[test]
    fn renders_svg_and_png_with_title_and_legend() {
        let series = vec![
            Series {
                name: "memcached".into(),
                points: (0..=80)
                    .map(|i| (i as f64 * 0.05, 10.0 + i as f64))
                    .collect(),
            },
            Series {
                name: "corecache".into(),
                points: (0..=80)
                    .map(|i| (i as f64 * 0.05, 5.0 + i as f64))
                    .collect(),
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("p.svg");
        let png = dir.path().join("p.png");
        if let Err(PlotError::NoFont) = render_svg(&series, "A title", &svg) {
            eprintln!("SKIP: no TrueType font installed (fonts-dejavu-core)");
            return;
        }
        let text = std::fs::read_to_string(&svg).unwrap();
        for needle in ["A title", "memcached", "corecache", "99.9%"] {
            assert!(text.contains(needle), "{needle} missing from the SVG");
        }
        render_png(&series, "A title", &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(
            bytes.len() > 5_000,
            "a blank image compresses to almost nothing"
        );
    }
}

//! Latency percentile curves of all servers in one PNG (plotters, bitmap backend). Text is
//! drawn with the DejaVu Sans font embedded in the binary, so no system font is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::Report;

const COLORS: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// x position of a percentile: 0 at 0%, 1 at 90%, 2 at 99%, 3 at 99.9%...
fn x_of(pct: f64) -> f64 {
    (-(1.0 - pct / 100.0).max(1e-5).log10()).clamp(0.0, 5.0)
}

fn x_label(x: &f64) -> String {
    match x.round() as i32 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        _ => "99.999%".into(),
    }
}

/// Draws the curves of every server of `report` into `path` (PNG).
pub fn draw(report: &Report, path: &Path) -> Result<(), String> {
    register_font();
    let series: Vec<(String, Vec<(f64, f64)>)> = report
        .results
        .iter()
        .filter(|r| !r.curve.is_empty())
        .map(|r| {
            let pts = r
                .curve
                .iter()
                .map(|&(p, us)| (x_of(p), us.max(0.1)))
                .collect();
            (format!("{} ({:?})", r.name, r.protocol).to_lowercase(), pts)
        })
        .collect();
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold((f64::MAX, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (lo, hi) = if series.is_empty() {
        (1.0, 10.0)
    } else {
        ((lo * 0.8).max(0.1), (hi * 1.25).max(lo * 2.0))
    };
    let root = BitMapBackend::new(path, (1000, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&report.title, ("sans-serif", 22))
        .margin(16)
        .margin_right(48)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..5f64, (lo..hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y| {
            if *y >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, pts)) in series.into_iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis() {
        assert_eq!(x_of(0.0), 0.0);
        assert!((x_of(99.0) - 2.0).abs() < 1e-9);
        assert_eq!(x_of(100.0), 5.0);
        assert_eq!(x_label(&3.0), "99.9%");
    }
}

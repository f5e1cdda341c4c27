//! Curves as self-contained SVG pictures: a value per step (training loss, or the mean reward of
//! reinforcement learning) and its held-out counterpart at each evaluation, on shared axes.

use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const MARGIN: f64 = 56.0;

/// A named series of `(step, loss)` points drawn in one colour.
pub struct Series<'a> {
    /// Label in the legend.
    pub name: &'a str,
    /// SVG colour of the line and legend entry (for example `"#1f77b4"`).
    pub color: &'a str,
    /// `(step, value)` pairs in drawing order; non-finite values are left out of the drawing.
    pub points: &'a [(usize, f64)],
}

/// "Nice" tick values covering `[lo, hi]` (steps of 1, 2 or 5 times a power of ten).
fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    (0..)
        .map(|i| first + i as f64 * step)
        .take_while(|&v| v <= hi + 1e-9 * span)
        .collect()
}

/// Renders the series as an SVG document titled `title`, its vertical axis named `y_label`.
pub fn curve_svg(title: &str, y_label: &str, series: &[Series]) -> String {
    let all: Vec<(usize, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|p| p.1.is_finite())
        .collect();
    let max_step = all.iter().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
    let (mut lo, mut hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-6 {
        hi = lo + 1.0;
    }
    let pad = 0.05 * (hi - lo);
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |s: f64| MARGIN + s / max_step * (WIDTH - 2.0 * MARGIN);
    let y = |l: f64| HEIGHT - MARGIN - (l - lo) / (hi - lo) * (HEIGHT - 2.0 * MARGIN);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for t in ticks(lo, hi, 6) {
        let _ = writeln!(
            svg,
            r##"<line x1="{MARGIN}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{t:.2}</text>"##,
            WIDTH - MARGIN,
            MARGIN - 6.0,
            y(t) + 4.0,
            y = y(t)
        );
    }
    for t in ticks(0.0, max_step, 8) {
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{MARGIN}" y2="{}" stroke="#eee"/><text x="{xx:.1}" y="{}" text-anchor="middle">{t}</text>"##,
            HEIGHT - MARGIN,
            HEIGHT - MARGIN + 18.0,
            xx = x(t)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">step</text>"#,
        WIDTH / 2.0,
        HEIGHT - 12.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        HEIGHT / 2.0,
        HEIGHT / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(st, l)| format!("{:.1},{:.1}", x(st as f64), y(l)))
            .collect();
        if pts.len() == 1 {
            let (cx, cy) = pts[0].split_once(',').expect("a point has two coordinates");
            let _ = writeln!(
                svg,
                r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{}"/>"#,
                s.color
            );
        } else if !pts.is_empty() {
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                s.color,
                pts.join(" ")
            );
        }
        let ly = MARGIN + 8.0 + 18.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            WIDTH - MARGIN - 130.0,
            WIDTH - MARGIN - 110.0,
            s.color,
            WIDTH - MARGIN - 104.0,
            ly + 4.0,
            escape(s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_series_with_axes() {
        let train: Vec<(usize, f64)> = (0..100).map(|s| (s, 4.0 - s as f64 * 0.02)).collect();
        let val = [(0, 4.1), (50, 3.2), (99, 2.3)];
        let svg = curve_svg(
            "run <a>",
            "loss",
            &[
                Series {
                    name: "train",
                    color: "#1f77b4",
                    points: &train,
                },
                Series {
                    name: "val",
                    color: "#d62728",
                    points: &val,
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("run &lt;a&gt;") && svg.contains(">val<") && svg.contains(">loss<"));
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(1.43, 4.2, 6);
        assert!(t.first().unwrap() >= &1.43 && t.last().unwrap() <= &4.2 && t.len() >= 4);
    }
}

//! Inline SVG charts for the HTML report: line charts over time and bar charts of a
//! response-time distribution. Drawn here in Rust, so the report needs no script
//! and no network; every path carries `data-points` (its number of points) so tests
//! and readers can check what was drawn.

use std::fmt::Write;

use super::escape;

/// Width of a chart's view box; the SVG scales to the page width.
const WIDTH: f64 = 960.0;
/// Height of a line chart's view box.
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 28.0;

/// One line of a line chart.
#[derive(Debug, Clone)]
pub(crate) struct Series<'a> {
    /// Legend text.
    pub(crate) label: &'a str,
    /// CSS colour.
    pub(crate) color: &'a str,
    /// `(seconds, value)` points, in time order.
    pub(crate) points: Vec<(f64, f64)>,
}

/// A line chart with a time axis.
#[derive(Debug, Clone)]
pub(crate) struct LineChart<'a> {
    /// `data-chart` attribute, e.g. `rps`.
    pub(crate) id: &'a str,
    /// Title drawn above the plot.
    pub(crate) title: &'a str,
    /// The lines.
    pub(crate) series: Vec<Series<'a>>,
}

/// One bar of a distribution: requests whose response time fell in `[low_ms, high_ms]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bin {
    /// Lower edge, ms.
    pub(crate) low_ms: f64,
    /// Upper edge, ms.
    pub(crate) high_ms: f64,
    /// Requests in the bin.
    pub(crate) count: u64,
}

/// A number with at most one decimal, without a trailing `.0`.
fn coord(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

/// A "nice" upper bound and step for an axis from 0 to `max` with about `ticks` steps.
pub(crate) fn nice_axis(max: f64, ticks: usize) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// A tick label: integers plainly, small values with enough decimals.
pub(crate) fn tick_label(value: f64) -> String {
    if value == 0.0 {
        "0".into()
    } else if value.abs() >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').to_string()
    }
}

/// Seconds as `m:ss` or `h:mm:ss`.
pub(crate) fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn open_svg(out: &mut String, id: &str, title: &str, height: f64) {
    let _ = write!(
        out,
        r##"<svg class="chart" data-chart="{id}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/><text x="{LEFT}" y="16" class="title">{t}</text>"##,
        id = escape(id),
        t = escape(title),
    );
}

/// Horizontal grid lines and y labels from 0 to `top`.
fn y_grid(out: &mut String, top: f64, step: f64, plot_bottom: f64) {
    let plot_height = plot_bottom - TOP;
    let steps = (top / step).round() as usize;
    for i in 0..=steps {
        let value = step * i as f64;
        let y = plot_bottom - plot_height * value / top;
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{y}" x2="{x2}" y2="{y}" class="grid"/><text x="{lx}" y="{ty}" class="ylabel">{label}</text>"#,
            y = coord(y),
            x2 = coord(WIDTH - RIGHT),
            lx = coord(LEFT - 6.0),
            ty = coord(y + 4.0),
            label = tick_label(value),
        );
    }
}

fn no_data(out: &mut String, height: f64) {
    let _ = write!(
        out,
        r#"<text x="{x}" y="{y}" class="nodata">no data</text></svg>"#,
        x = coord(WIDTH / 2.0),
        y = coord(height / 2.0),
    );
}

impl LineChart<'_> {
    /// The chart as an `<svg>` element.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        open_svg(&mut out, self.id, self.title, HEIGHT);
        let points = self.series.iter().flat_map(|s| s.points.iter());
        let (mut t0, mut t1, mut max) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        let mut any = false;
        for (t, v) in points {
            if t.is_finite() && v.is_finite() {
                any = true;
                t0 = t0.min(*t);
                t1 = t1.max(*t);
                max = max.max(*v);
            }
        }
        if !any {
            no_data(&mut out, HEIGHT);
            return out;
        }
        if t1 <= t0 {
            t1 = t0 + 1.0;
        }
        let plot_bottom = HEIGHT - BOTTOM;
        let (top, step) = nice_axis(max, 4);
        y_grid(&mut out, top, step, plot_bottom);
        let plot_width = WIDTH - LEFT - RIGHT;
        let x_of = |t: f64| LEFT + plot_width * (t - t0) / (t1 - t0);
        let y_of = |v: f64| plot_bottom - (plot_bottom - TOP) * v / top;
        // Time ticks: about 8, on whole seconds.
        let (_, t_step) = nice_axis(t1 - t0, 8);
        let t_step = t_step.max(1.0);
        let mut t = (t0 / t_step).ceil() * t_step;
        let mut guard = 0;
        while t <= t1 && guard < 64 {
            let _ = write!(
                out,
                r#"<text x="{x}" y="{y}" class="xlabel">{label}</text>"#,
                x = coord(x_of(t)),
                y = coord(HEIGHT - 8.0),
                label = clock(t),
            );
            t += t_step;
            guard += 1;
        }
        let mut legend_x = WIDTH - RIGHT;
        for series in self.series.iter().rev() {
            legend_x -= 14.0 + 7.0 * series.label.chars().count() as f64 + 16.0;
            let _ = write!(
                out,
                r#"<rect x="{x}" y="8" width="12" height="10" fill="{color}"/><text x="{tx}" y="17" class="legend">{label}</text>"#,
                x = coord(legend_x),
                tx = coord(legend_x + 16.0),
                color = escape(series.color),
                label = escape(series.label),
            );
        }
        for series in &self.series {
            let mut d = String::with_capacity(series.points.len() * 12);
            let mut n = 0usize;
            for (t, v) in &series.points {
                if !(t.is_finite() && v.is_finite()) {
                    continue;
                }
                let _ = write!(
                    d,
                    "{}{},{}",
                    if n == 0 { "M" } else { "L" },
                    coord(x_of(*t)),
                    coord(y_of(*v))
                );
                n += 1;
            }
            let _ = write!(
                out,
                r#"<path d="{d}" data-series="{label}" data-points="{n}" fill="none" stroke="{color}" stroke-width="1.8"/>"#,
                label = escape(series.label),
                color = escape(series.color),
            );
        }
        out.push_str("</svg>");
        out
    }
}

/// A bar chart of a response-time distribution.
pub(crate) fn distribution_chart(id: &str, title: &str, bins: &[Bin]) -> String {
    const BAR_HEIGHT: f64 = 200.0;
    let mut out = String::new();
    open_svg(&mut out, id, title, BAR_HEIGHT);
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0);
    if bins.is_empty() || max == 0 {
        no_data(&mut out, BAR_HEIGHT);
        return out;
    }
    let plot_bottom = BAR_HEIGHT - BOTTOM;
    let (top, step) = nice_axis(max as f64, 4);
    y_grid(&mut out, top, step, plot_bottom);
    let plot_width = WIDTH - LEFT - RIGHT;
    let slot = plot_width / bins.len() as f64;
    let label_every = (bins.len() / 8).max(1);
    let _ = write!(out, r#"<g class="bars" data-points="{}">"#, bins.len());
    for (i, bin) in bins.iter().enumerate() {
        let height = (plot_bottom - TOP) * bin.count as f64 / top;
        let x = LEFT + slot * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" class="bar"><title>{lo}–{hi} ms: {n}</title></rect>"#,
            x = coord(x + 1.0),
            y = coord(plot_bottom - height),
            w = coord((slot - 2.0).max(1.0)),
            h = coord(height),
            lo = tick_label(round_ms(bin.low_ms)),
            hi = tick_label(round_ms(bin.high_ms)),
            n = bin.count,
        );
        if i % label_every == 0 {
            let _ = write!(
                out,
                r#"<text x="{x}" y="{y}" class="xlabel">{label}</text>"#,
                x = coord(x + slot / 2.0),
                y = coord(BAR_HEIGHT - 8.0),
                label = tick_label(round_ms(bin.high_ms)),
            );
        }
    }
    out.push_str("</g></svg>");
    out
}

/// Rounds a bin edge for display: 3 significant digits.
fn round_ms(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 0.0;
    }
    let magnitude = 10f64.powf(value.log10().floor() - 2.0);
    (value / magnitude).round() * magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_nice() {
        assert_eq!(nice_axis(97.0, 4), (100.0, 25.0));
        assert_eq!(nice_axis(3.2, 4), (4.0, 1.0));
        assert_eq!(nice_axis(0.0, 4), (1.0, 0.25));
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(25_000.0), "25k");
        assert_eq!(clock(65.0), "1:05");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(round_ms(1234.5), 1230.0);
    }

    #[test]
    fn line_chart_draws_every_point() {
        let chart = LineChart {
            id: "rps",
            title: "Requests <per> second",
            series: vec![
                Series {
                    label: "requests/s",
                    color: "#2a6",
                    points: (0..10).map(|t| (f64::from(t), f64::from(t * t))).collect(),
                },
                Series {
                    label: "failures/s",
                    color: "#d33",
                    points: vec![(0.0, 0.0), (9.0, f64::NAN), (9.0, 1.0)],
                },
            ],
        };
        let svg = chart.render();
        assert!(svg.contains(r#"data-points="10""#), "{svg}");
        assert!(svg.contains(r#"data-points="2""#), "{svg}");
        assert!(svg.contains("Requests &lt;per&gt; second"));
        assert_eq!(svg.matches("<path").count(), 2);
        // The largest value (81) is below the axis top (100), so it is inside the plot.
        assert!(svg.contains(">100</text>"), "{svg}");
        let empty = LineChart {
            id: "x",
            title: "x",
            series: vec![],
        }
        .render();
        assert!(empty.contains("no data"));
    }

    #[test]
    fn distribution_has_one_bar_per_bin() {
        let bins: Vec<Bin> = (1..=5u32)
            .map(|i| Bin {
                low_ms: f64::from(i),
                high_ms: f64::from(i + 1),
                count: u64::from(i) * 3,
            })
            .collect();
        let svg = distribution_chart("dist-0", "home", &bins);
        assert_eq!(svg.matches(r#"class="bar""#).count(), 5);
        assert!(svg.contains("5–6 ms: 15"), "{svg}");
        assert!(distribution_chart("d", "t", &[]).contains("no data"));
    }
}

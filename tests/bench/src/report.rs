//! Plain-text tables and target checks for the terminal.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::LoadResult;

enum Line {
    Cells(Vec<String>),
    Section(String),
}

/// A table whose first column is a label (left-aligned) and whose other columns are figures
/// (right-aligned).
pub struct Table {
    headers: Vec<String>,
    lines: Vec<Line>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            lines: Vec::new(),
        }
    }

    pub fn section(&mut self, title: impl Into<String>) {
        self.lines.push(Line::Section(title.into()));
    }

    pub fn row(&mut self, label: impl Into<String>, cells: Vec<String>) {
        let mut row = vec![label.into()];
        row.extend(cells);
        row.resize(self.headers.len(), String::new());
        self.lines.push(Line::Cells(row));
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for line in &self.lines {
            if let Line::Cells(cells) = line {
                for (width, cell) in widths.iter_mut().zip(cells) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let total = widths.iter().sum::<usize>() + 3 * widths.len().saturating_sub(1);
        let mut out = String::new();
        let render_row = |out: &mut String, cells: &[String]| {
            for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(out, "{cell:<width$}");
                } else {
                    let _ = write!(out, "   {cell:>width$}");
                }
            }
            out.push('\n');
        };
        render_row(&mut out, &self.headers);
        let _ = writeln!(out, "{}", "=".repeat(total));
        for line in &self.lines {
            match line {
                Line::Cells(cells) => render_row(&mut out, cells),
                Line::Section(title) => {
                    let _ = writeln!(
                        out,
                        "-- {title} {}",
                        "-".repeat(total.saturating_sub(title.chars().count() + 4))
                    );
                }
            }
        }
        out
    }
}

/// Milliseconds with a precision that suits the value.
pub fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

pub fn rate(per_second: f64) -> String {
    if per_second >= 100.0 {
        format!("{per_second:.0}")
    } else {
        format!("{per_second:.1}")
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `ops/s` of a run, or `-` when it did not run.
pub fn throughput(result: Option<&LoadResult>) -> String {
    result.map_or_else(|| "-".to_owned(), |r| rate(r.per_second()))
}

/// `p50 / p99` in ms of a run.
pub fn p50_p99(result: Option<&LoadResult>) -> String {
    let Some(result) = result else {
        return "-".to_owned();
    };
    match (
        result.latencies.percentile(50.0),
        result.latencies.percentile(99.0),
    ) {
        (Some(p50), Some(p99)) => format!("{} / {}", ms(p50), ms(p99)),
        _ => "no calls".to_owned(),
    }
}

/// Server CPU per call; `n/a` for the plain client, which has no server.
pub fn cpu_per_call(result: Option<&LoadResult>) -> String {
    match result {
        Some(result) if result.server_cpu.is_none() => "n/a".to_owned(),
        _ => micros(result.and_then(LoadResult::cpu_per_call)),
    }
}

pub fn client_cpu_per_call(result: Option<&LoadResult>) -> String {
    micros(result.and_then(LoadResult::client_cpu_per_call))
}

fn micros(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |cpu| format!("{:.0}", cpu.as_secs_f64() * 1e6),
    )
}

/// One target: a measured figure against a bound.
pub struct Check {
    pub name: String,
    /// The measured figure as printed, e.g. `0.93` or `142 MiB`.
    pub measured: Option<String>,
    pub target: String,
    /// `None` when the figure could not be measured in this run.
    pub pass: Option<bool>,
}

impl Check {
    /// `numerator / denominator ≥ at_least`.
    pub fn ratio(
        name: &str,
        numerator: Option<f64>,
        denominator: Option<f64>,
        at_least: f64,
    ) -> Self {
        let ratio = match (numerator, denominator) {
            (Some(n), Some(d)) if d > 0.0 => Some(n / d),
            _ => None,
        };
        Self {
            name: name.to_owned(),
            measured: ratio.map(|r| format!("{r:.2}")),
            target: format!(">= {at_least:.2}"),
            pass: ratio.map(|r| r >= at_least),
        }
    }

    /// `value ≤ at_most`.
    pub fn at_most(name: &str, value: Option<f64>, at_most: f64, unit: &str) -> Self {
        Self {
            name: name.to_owned(),
            measured: value.map(|v| format!("{v:.1} {unit}")),
            target: format!("<= {at_most} {unit}"),
            pass: value.map(|v| v <= at_most),
        }
    }

    /// `value ≥ at_least`.
    pub fn at_least(name: &str, value: Option<f64>, at_least: f64, unit: &str) -> Self {
        Self {
            name: name.to_owned(),
            measured: value.map(|v| format!("{} {unit}", rate(v))),
            target: format!(">= {} {unit}", rate(at_least)),
            pass: value.map(|v| v >= at_least),
        }
    }

    pub fn holds(name: &str, measured: Option<String>, target: &str, pass: Option<bool>) -> Self {
        Self {
            name: name.to_owned(),
            measured,
            target: target.to_owned(),
            pass,
        }
    }
}

pub fn render_checks(checks: &[Check]) -> String {
    let name_width = checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let verdict = match check.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a ",
        };
        let _ = writeln!(
            out,
            "{verdict}  {:<name_width$}  {:>10}  (target {})",
            check.name,
            check.measured.as_deref().unwrap_or("-"),
            check.target
        );
    }
    out
}

//! Time spent in each kernel, to find where a GPU's time goes.
//!
//! While profiling is on ([`Gpu::set_profiling`](crate::Gpu::set_profiling)), each kernel
//! launch and each cuBLAS GEMM is bracketed by two events on the device's stream, and
//! [`Gpu::kernel_times`](crate::Gpu::kernel_times) waits for the stream, reads the time between
//! each pair and sums it per kernel name. An event pair times the work between its two marks
//! on the GPU, so the totals are the kernels' own running time; the gaps between kernels
//! (launch latency, host work) are not in them. Recording events costs a few microseconds of
//! host time per launch, so a profiled run is not a timed run.
//!
//! The emulator times each kernel by the wall clock instead: its figures say what the CPU
//! spends emulating, nothing about a GPU.

use std::collections::HashMap;

/// Total time of one kernel (or cuBLAS routine) over the profiled work.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The kernel's name, e.g. `attention_forward_f32`, or `cublas_gemm_f32`.
    pub name: String,
    /// Launches counted.
    pub calls: u64,
    /// Milliseconds summed over the launches.
    pub ms: f64,
}

/// Sums of time per kernel name.
#[derive(Debug, Default)]
pub struct Totals(HashMap<String, (u64, f64)>);

impl Totals {
    /// Counts one launch of `name` that took `ms` milliseconds.
    pub fn add(&mut self, name: &str, ms: f64) {
        let entry = self.0.entry(name.to_string()).or_default();
        entry.0 += 1;
        entry.1 += ms;
    }

    /// One row per kernel, the most time first (names break ties, so the order is fixed).
    pub fn rows(&self) -> Vec<KernelTime> {
        let mut rows: Vec<KernelTime> = self
            .0
            .iter()
            .map(|(name, &(calls, ms))| KernelTime {
                name: name.clone(),
                calls,
                ms,
            })
            .collect();
        rows.sort_by(|a, b| b.ms.total_cmp(&a.ms).then_with(|| a.name.cmp(&b.name)));
        rows
    }
}

/// A table of `rows` with each kernel's share of the total, its launches and mean time, every
/// figure divided by `per` (the number of steps profiled, say, for figures per step).
pub fn table(rows: &[KernelTime], per: usize) -> String {
    let per = per.max(1) as f64;
    let total: f64 = rows.iter().map(|r| r.ms).sum();
    let mut out = format!(
        "{:>10} {:>6} {:>8} {:>10}  kernel\n",
        "ms", "share", "calls", "us/call"
    );
    for r in rows {
        out += &format!(
            "{:>10.3} {:>5.1}% {:>8} {:>10.1}  {}\n",
            r.ms / per,
            100.0 * r.ms / total.max(f64::MIN_POSITIVE),
            (r.calls as f64 / per).round(),
            1e3 * r.ms / r.calls.max(1) as f64,
            r.name
        );
    }
    out += &format!("{:>10.3} {:>6}  all kernels\n", total / per, "100%");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_per_name_and_sort_by_time() {
        let mut t = Totals::default();
        t.add("gelu", 1.0);
        t.add("matmul", 5.0);
        t.add("gelu", 2.5);
        t.add("copy", 3.5);
        let rows = t.rows();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["matmul", "copy", "gelu"]);
        assert_eq!(rows[2].calls, 2);
        assert_eq!(rows[2].ms, 3.5);
    }

    #[test]
    fn table_divides_by_the_steps_and_shows_shares() {
        let rows = [
            KernelTime {
                name: "matmul".into(),
                calls: 4,
                ms: 6.0,
            },
            KernelTime {
                name: "gelu".into(),
                calls: 2,
                ms: 2.0,
            },
        ];
        let text = table(&rows, 2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[1].contains("3.000") && lines[1].contains("75.0%"),
            "{text}"
        );
        assert!(
            lines[1].contains("1500.0") && lines[1].ends_with("matmul"),
            "{text}"
        );
        assert!(
            lines[2].contains("1.000") && lines[2].contains("25.0%"),
            "{text}"
        );
        assert!(
            lines[3].contains("4.000") && lines[3].ends_with("all kernels"),
            "{text}"
        );
    }
}

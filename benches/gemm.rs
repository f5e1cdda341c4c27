//! f32 GEMM throughput (GFLOP/s) beside `torch.matmul`, shape by shape, on the same threads.
//!
//! ```text
//! RAYON_NUM_THREADS=2 PYTHON=path/to/python cargo bench --bench gemm -- [--rounds N] [FILTER...]
//! RAYON_NUM_THREADS=1 PYTHON=path/to/python cargo bench --bench gemm -- --cpu-time [FILTER...]
//! ```
//!
//! Ours is `Tensor::matmul` on views laid out as the shape's name says (`nn`: A (M,K) and B
//! (K,N) row-major; `tn`: A stored as (K,M) and transposed; `nt`: B stored as (N,K), as in a
//! linear layer's `x W^T`), allocating its output like torch does. The reference is
//! `benches/compare/gemm_torch.py`, run once with `$PYTHON` (default `python3`) and
//! `torch.set_num_threads` set to rayon's thread count; it is fed one shape at a time, so both
//! sides are timed alternately, round after round, under the same load. A FILTER keeps the
//! shapes whose name contains it. Figures are medians over all calls. With `--cpu-time` (one
//! thread only) both sides are timed by their thread's CPU time instead of the wall clock,
//! which other jobs sharing the machine barely move: a comparison of the kernels themselves.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;
use tensor::{DType, Rng, Tensor};

/// One product to time: `batch x (M,K) @ (K,N)` with A and B laid out as `ops` says.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// `'n'` or `'t'` for A, then for B (see the module docs).
    pub ops: [char; 2],
}

impl Shape {
    const fn new(m: usize, k: usize, n: usize, ops: &str) -> Shape {
        let b = ops.as_bytes();
        Shape {
            batch: 1,
            m,
            k,
            n,
            ops: [b[0] as char, b[1] as char],
        }
    }

    const fn batched(self, batch: usize) -> Shape {
        Shape { batch, ..self }
    }

    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.m * self.k * self.n) as f64
    }

    pub fn name(&self) -> String {
        let (a, b) = (self.ops[0], self.ops[1]);
        let lead = if self.batch > 1 {
            format!("{}x ", self.batch)
        } else {
            String::new()
        };
        format!("{lead}{}x{}x{} {a}{b}", self.m, self.k, self.n)
    }
}

/// The shapes compared with torch: a GPT-2-small-like model at T = 4096 tokens per step
/// (C = 384, MLP 1536, its 50304-token head at 768 rows), its attention products (48 heads of
/// 256 x 64), the products of a small model that trains in minutes, and squares.
const SHAPES: &[Shape] = &[
    Shape::new(4096, 384, 1536, "nt"),
    Shape::new(4096, 384, 1536, "nn"),
    Shape::new(4096, 1536, 384, "nt"),
    Shape::new(4096, 1536, 384, "nn"),
    Shape::new(4096, 384, 384, "nt"),
    Shape::new(4096, 384, 384, "tn"),
    Shape::new(768, 768, 50304, "nt"),
    Shape::new(768, 768, 50304, "nn"),
    Shape::new(256, 64, 256, "nt").batched(48),
    Shape::new(256, 256, 64, "nn").batched(48),
    Shape::new(768, 128, 384, "nn"),
    Shape::new(768, 128, 384, "tn"),
    Shape::new(768, 128, 384, "nt"),
    Shape::new(768, 128, 128, "nn"),
    Shape::new(768, 128, 128, "tn"),
    Shape::new(768, 128, 128, "nt"),
    Shape::new(768, 512, 128, "nn"),
    Shape::new(768, 512, 128, "tn"),
    Shape::new(768, 512, 128, "nt"),
    Shape::new(768, 128, 512, "nn"),
    Shape::new(768, 128, 512, "tn"),
    Shape::new(768, 128, 512, "nt"),
    Shape::new(128, 128, 128, "nn"),
    Shape::new(256, 256, 256, "nn"),
    Shape::new(512, 512, 512, "nn"),
    Shape::new(1024, 1024, 1024, "nn"),
    Shape::new(2048, 2048, 2048, "nn"),
];

/// Wall time of one call to `f`, in seconds.
pub fn seconds(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// CPU time of the calling thread during one call to `f`, in seconds: what a single-threaded
/// run costs, barely moved by other jobs sharing the machine.
pub fn cpu_seconds(f: &mut dyn FnMut()) -> f64 {
    let now = || {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec for the call to write.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    };
    let start = now();
    f();
    now() - start
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Calls per timing batch: enough for about `budget` seconds, at least 3.
pub fn repeats(one_call: f64, budget: f64) -> usize {
    ((budget / one_call.max(1e-7)) as usize).clamp(3, 1000)
}

/// A random tensor with logical shape `(batch.., rows, cols)`, stored transposed if `t`.
fn operand(batch: usize, rows: usize, cols: usize, t: char, rng: &mut Rng) -> Tensor {
    let lead: Vec<usize> = if batch > 1 { vec![batch] } else { vec![] };
    let dims = |r, c| [lead.clone(), vec![r, c]].concat();
    if t == 't' {
        let r = lead.len();
        let r = r as isize;
        Tensor::randn(&dims(cols, rows), 0.0, 1.0, DType::F32, rng).transpose(r, r + 1)
    } else {
        Tensor::randn(&dims(rows, cols), 0.0, 1.0, DType::F32, rng)
    }
}

/// The torch side: a child process answering one timing request per line.
struct Torch {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Torch {
    /// Starts the script, or says why it cannot and returns `None`.
    fn start(threads: usize, cpu_time: bool) -> Option<Torch> {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/compare/gemm_torch.py");
        let child = Command::new(&python)
            .arg(script)
            .args(["--threads", &threads.to_string()])
            .args(["--clock", if cpu_time { "thread" } else { "wall" }])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("torch skipped: cannot run {python}: {e}");
                return None;
            }
        };
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut banner = String::new();
        if stdout.read_line(&mut banner).ok()? == 0 {
            eprintln!("torch skipped: the reference script did not start");
            return None;
        }
        eprintln!("reference: {}", banner.trim());
        Some(Torch {
            child,
            stdin,
            stdout,
        })
    }

    /// Seconds of each of `repeats` calls of the shape's product.
    fn time(&mut self, s: &Shape, repeats: usize) -> Vec<f64> {
        let [a, b] = s.ops;
        let (batch, m, k, n) = (s.batch, s.m, s.k, s.n);
        writeln!(self.stdin, "{batch} {m} {k} {n} {a} {b} {repeats}").expect("torch stdin");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("torch stdout");
        line.split_whitespace()
            .map(|t| t.parse().expect("torch timing"))
            .collect()
    }
}

impl Drop for Torch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times every shape on both sides and prints a markdown table of GFLOP/s and ratios.
fn compare(shapes: &[Shape], rounds: usize, cpu_time: bool) {
    let threads = rayon::current_num_threads();
    assert!(
        !cpu_time || threads == 1,
        "--cpu-time needs RAYON_NUM_THREADS=1"
    );
    let clock: fn(&mut dyn FnMut()) -> f64 = if cpu_time { cpu_seconds } else { seconds };
    let mut torch = Torch::start(threads, cpu_time);
    let mut rng = Rng::new(0);
    println!("| shape (M x K x N) | ours GFLOP/s | torch GFLOP/s | ours / torch |");
    println!("| --- | ---: | ---: | ---: |");
    for s in shapes {
        let a = operand(s.batch, s.m, s.k, s.ops[0], &mut rng);
        let b = operand(s.batch, s.k, s.n, s.ops[1], &mut rng);
        let one = clock(&mut || drop(a.matmul(&b)));
        let reps = repeats(one, 0.25);
        let (mut ours, mut theirs) = (vec![], vec![]);
        for _ in 0..rounds {
            for _ in 0..reps {
                ours.push(clock(&mut || drop(a.matmul(&b))));
            }
            if let Some(t) = torch.as_mut() {
                theirs.extend(t.time(s, reps));
                // PyTorch's OpenMP threads spin for a while after their last product; let them
                // go idle, so that they do not share the cores with ours.
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
        let ours = s.flops() / median(&mut ours) / 1e9;
        let name = s.name();
        if theirs.is_empty() {
            println!("| {name} | {ours:.1} | | |");
        } else {
            let theirs = s.flops() / median(&mut theirs) / 1e9;
            println!(
                "| {name} | {ours:.1} | {theirs:.1} | {:.2} |",
                ours / theirs
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 3;
    let mut filters = vec![];
    let mut cpu_time = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cpu-time" => cpu_time = true,
            "--rounds" => rounds = it.next().and_then(|r| r.parse().ok()).expect("--rounds N"),
            "--bench" => {}
            f => filters.push(f.to_string()),
        }
    }
    let keep = |s: &Shape| filters.is_empty() || filters.iter().any(|f| s.name().contains(f));
    eprintln!(
        "{} rayon threads, kernel {}",
        rayon::current_num_threads(),
        tensor::cpu::gemm::kernel::best().name
    );
    let shapes: Vec<Shape> = SHAPES.iter().copied().filter(keep).collect();
    compare(&shapes, rounds, cpu_time);
}

//! `enclave-bench convert`: the whiteboard converter (`enclave_server::convert`) on a PDF and
//! on an office document of the same number of pages.
//!
//! ```text
//! cargo run --release -p enclave-bench -- convert --pages 20 --runs 5
//! ```
//!
//! Method: both documents are generated (`enclave_server::convert::sample`): a PDF of A4 pages
//! with a heading, eight lines of text, a filled rectangle, a circle and a line on each, and a
//! flat OpenDocument text (`.fodt`) of A4 pages with a heading and five paragraphs each. After
//! one unmeasured conversion of each (the disk cache), the runs alternate PDF and office
//! document, each into a fresh work directory, with the server's default limits. Per run: the
//! wall time of `convert` and the CPU time of its child processes (`cutime + cstime` of
//! `/proc/self/stat`, which is `getrusage(RUSAGE_CHILDREN)`: every tool is waited for before
//! `convert` returns). The PDF path is poppler alone; the office path adds LibreOffice, which
//! starts with a fresh profile every time (as the server runs it). Every run must give one
//! image per page.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use enclave_bench::procfs;
use enclave_server::convert::{self, sample, ConvertLimits, Converter};

use crate::report::{fixed, Machine};
use crate::stats::{max_of, median};

/// Options of the converter benchmark.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Opts {
    /// Pages of each generated document.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) pages: u32,
    /// Measured conversions of each document.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub(crate) runs: u32,
}

/// One measured conversion.
struct Run {
    wall: Duration,
    children_cpu: Duration,
}

/// Runs the benchmark and prints its report.
pub(crate) fn run(opts: Opts) -> anyhow::Result<()> {
    Converter::default()
        .tools_available()
        .map_err(|m| anyhow::anyhow!("cannot run the converter: {m}"))?;
    let machine = Machine::read();
    let dir = tempfile::Builder::new()
        .prefix("enclave-convert-bench-")
        .tempdir()?;
    let pdf = dir.path().join("doc-pdf");
    std::fs::write(&pdf, sample::pdf(opts.pages, 595, 842))?;
    let office = dir.path().join("doc-fodt");
    std::fs::write(&office, sample::fodt(opts.pages))?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let limits = ConvertLimits::default();
    let started = Instant::now();
    let (mut pdf_runs, mut office_runs) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for (i, input) in [&pdf, &office].into_iter().enumerate() {
            once(
                input,
                &dir.path().join(format!("warm-{i}")),
                opts.pages,
                &limits,
            )
            .await?;
        }
        for r in 0..opts.runs {
            eprintln!("run {}/{}", r + 1, opts.runs);
            let work = dir.path().join(format!("run-{r}"));
            pdf_runs.push(once(&pdf, &work.join("pdf"), opts.pages, &limits).await?);
            office_runs.push(once(&office, &work.join("office"), opts.pages, &limits).await?);
        }
        anyhow::Ok(())
    })?;

    let pdf_bytes = std::fs::metadata(&pdf)?.len();
    let office_bytes = std::fs::metadata(&office)?.len();
    println!(
        "enclave-bench convert: {} pages, {} runs of each document after one unmeasured run; {:.0} s in all\n",
        opts.pages,
        opts.runs,
        started.elapsed().as_secs_f64()
    );
    println!(
        "Machine: nproc = {}, {}, {} {}; {}; load average {} at the start, {} at the end",
        machine.nproc,
        machine.model,
        machine.system,
        machine.kernel,
        machine.date,
        machine.load,
        procfs::loadavg().unwrap_or_default()
    );
    println!(
        "Tools: {}; {}\n",
        first_line("soffice", "--version"),
        first_line("pdftoppm", "-v")
    );
    println!("| document | median wall (s) | worst wall (s) | per page, median (ms) | children's CPU, median (s) | CPU / wall |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, runs) in [
        (
            format!("PDF, {pdf_bytes} bytes (pdfinfo + pdftoppm)"),
            &pdf_runs,
        ),
        (
            format!("flat ODT, {office_bytes} bytes (soffice + pdfinfo + pdftoppm)"),
            &office_runs,
        ),
    ] {
        let wall: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64()).collect();
        let cpu: Vec<f64> = runs.iter().map(|r| r.children_cpu.as_secs_f64()).collect();
        let ratio: Vec<f64> = runs
            .iter()
            .map(|r| r.children_cpu.as_secs_f64() / r.wall.as_secs_f64())
            .collect();
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            fixed(median(&wall), 2),
            fixed(max_of(wall.iter().copied()), 2),
            fixed(median(&wall) * 1000.0 / f64::from(opts.pages), 0),
            fixed(median(&cpu), 2),
            fixed(median(&ratio), 2),
        );
    }
    println!();
    for (name, runs) in [("PDF", &pdf_runs), ("ODT", &office_runs)] {
        let list: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    "{:.2} s ({:.2} s CPU)",
                    r.wall.as_secs_f64(),
                    r.children_cpu.as_secs_f64()
                )
            })
            .collect();
        println!("Runs, {name}: {}", list.join(", "));
    }
    let office_over_pdf = median(
        &office_runs
            .iter()
            .map(|r| r.wall.as_secs_f64())
            .collect::<Vec<_>>(),
    ) / median(
        &pdf_runs
            .iter()
            .map(|r| r.wall.as_secs_f64())
            .collect::<Vec<_>>(),
    );
    println!(
        "\nOffice document / PDF, median wall: {}",
        fixed(office_over_pdf, 2)
    );
    Ok(())
}

/// One conversion into `work`, timed, its page count checked.
async fn once(
    input: &Path,
    work: &Path,
    pages: u32,
    limits: &ConvertLimits,
) -> anyhow::Result<Run> {
    let cpu_before = procfs::children_cpu().context("reading /proc/self/stat")?;
    let t = Instant::now();
    let got = convert::convert(input, work, limits)
        .await
        .with_context(|| format!("converting {}", input.display()))?;
    let wall = t.elapsed();
    let cpu_after = procfs::children_cpu().context("reading /proc/self/stat")?;
    if got.len() != pages as usize {
        bail!(
            "{}: {} page images for {pages} pages",
            input.display(),
            got.len()
        );
    }
    // Keep the disk from filling over many runs.
    let _ = std::fs::remove_dir_all(work);
    Ok(Run {
        wall,
        children_cpu: cpu_after.saturating_sub(cpu_before),
    })
}

/// The first line a program prints (stdout, else stderr), or its name.
fn first_line(program: &str, arg: &str) -> String {
    std::process::Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| {
            let out = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&out)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| program.to_owned())
}

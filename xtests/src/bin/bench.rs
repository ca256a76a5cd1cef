//! `make bench`: instruction-count benchmarks under `-icount`, boot-time
//! scaling with RAM size, and the wall time of the tellus suite.
//!
//! Prints `bench: NAME VALUE UNIT` lines, then a block comparing a few
//! values with their targets (OK/MISS). Exits 1 only when a run failed
//! (non-zero QEMU exit, timeout, fatal error) or expected lines are missing;
//! missed targets are reported but do not fail.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use xtests::{
    bench_lines, check_tellus_passed, env_timeout, run, BenchLine, Images, QemuConfig, RunOutput,
};

const NCPU: u32 = 2;
const ICOUNT: &str = "shift=0,sleep=off";
/// RAM sizes (MiB) for the boot-scaling runs; the first one also provides
/// the SBI benchmarks.
const BOOT_MEM_MIB: [u32; 3] = [2048, 4096, 8192];
/// Benchmarks tellus must report in bench mode.
const SBI_BENCHES: [&str; 4] = [
    "sbi_null_roundtrip",
    "sbi_set_timer",
    "sbi_ipi_self",
    "sbi_rfence_all",
];
/// TEE benchmarks tellus must report in bench mode unless it says COVH
/// is not there (`tellus: COVH not available`).
const TEE_BENCHES: [&str; 9] = [
    "convert_fence_per_page",
    "measured_page_instructions",
    "measured_page_overhead_pct",
    "tvm_create_1m",
    "tvm_ecall_roundtrip",
    "tvm_sbi_ipi_roundtrip",
    // COVI (issue 15); the project's QEMU has IMSIC guest files for TVMs.
    "tvm_imsic_ipi_roundtrip",
    "covi_inject",
    "covi_rebind",
];
const WALL_RUNS: usize = 3;

/// (name, target upper bound).
const TARGETS: [(&str, f64); 12] = [
    ("sbi_null_roundtrip", 250.0),
    ("boot_to_host_2g", 200_000_000.0),
    ("run_tellus_wall", 2.0),
    ("convert_fence_per_page", 300.0),
    ("measured_page_overhead_pct", 5.0),
    ("measured_page_instructions", 60_000.0),
    ("tvm_ecall_roundtrip", 1_000.0),
    // vCPU -> vCPU -> vCPU SBI IPI inside a TVM, both harts' instructions
    // (issue 12).
    ("tvm_sbi_ipi_roundtrip", 3_000.0),
    // The same through the vCPUs' IMSIC guest files, and one COVI
    // injection from the host (issue 15).
    ("tvm_imsic_ipi_roundtrip", 1_000.0),
    ("covi_inject", 500.0),
    ("vmm_ecall_roundtrip", 20_000.0),
    ("vmm_ecall_kernel", 3_000.0),
];

fn describe_failure(what: &str, out: &RunOutput) -> String {
    format!("{what} failed:\n{}", out.describe(60))
}

/// A run that must have exited by itself with code 0 and no fatal error.
fn check_clean_exit(what: &str, out: &RunOutput) -> Result<(), String> {
    if !out.success() || !out.fatal_lines().is_empty() {
        return Err(describe_failure(what, out));
    }
    Ok(())
}

fn gib_name(mem_mib: u32) -> String {
    format!("boot_to_host_{}g", mem_mib / 1024)
}

/// The boot-to-host line of a run with `mem_mib` of RAM: the exact
/// `boot_to_host_<N>g` name if tellus printed it, else any `boot_to_host*`.
fn boot_line(lines: &[BenchLine], mem_mib: u32) -> Option<&BenchLine> {
    let exact = gib_name(mem_mib);
    lines
        .iter()
        .find(|l| l.name == exact)
        .or_else(|| lines.iter().find(|l| l.name.starts_with("boot_to_host")))
}

fn bench_config(images: &Images, mem_mib: u32) -> QemuConfig {
    QemuConfig::with_images(images)
        .ncpu(NCPU)
        .mem_mib(mem_mib)
        .bootargs("bench")
        .icount(ICOUNT)
        .timeout(env_timeout(Duration::from_secs(600)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let images = match Images::locate() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut errors: Vec<String> = Vec::new();
    // Values for the target table, by name.
    let mut values: Vec<(String, f64)> = Vec::new();

    // SALUS_BENCH_ONLY=tvm: only the Linux TVM's boot (issue 12).
    if std::env::var("SALUS_BENCH_ONLY").as_deref() == Ok("tvm") {
        let (figs, errs) = xtests::tvm_bench::run_linux_tvm_bench(ICOUNT);
        print_figures(&figs, &mut values);
        errors.extend(errs);
        return finish(&errors);
    }

    // SALUS_BENCH_ONLY=vmm: only the salus-vmm figures (issue 9).
    if std::env::var("SALUS_BENCH_ONLY").as_deref() == Ok("vmm") {
        let (figs, errs) = xtests::vmm_bench::run_vmm_benches(ICOUNT);
        print_figures(&figs, &mut values);
        errors.extend(errs);
        return finish(&errors);
    }

    // SALUS_BENCH_ONLY=load: only the salus-load figures (issue 14).
    if std::env::var("SALUS_BENCH_ONLY").as_deref() == Ok("load") {
        let icount = std::env::var("SALUS_LOAD_ICOUNT").ok();
        let (figs, errs) = xtests::linux_bench::run_load_benches(icount.as_deref());
        print_figures(&figs, &mut values);
        errors.extend(errs);
        return finish(&errors);
    }

    // 1 + 2: bench mode under -icount at 2, 4 and 8 GiB. The results are
    // instruction counts, so running the three in parallel does not skew them.
    eprintln!(
        "bench: running tellus in bench mode (-icount {ICOUNT}, {NCPU} harts, {:?} MiB)...",
        BOOT_MEM_MIB
    );
    let outs: Vec<RunOutput> = thread::scope(|s| {
        let handles: Vec<_> = BOOT_MEM_MIB
            .iter()
            .map(|&m| {
                let cfg = bench_config(&images, m);
                s.spawn(move || run(&cfg))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut boot: Vec<(u32, f64, String)> = Vec::new();
    for (i, (&mem, out)) in BOOT_MEM_MIB.iter().zip(&outs).enumerate() {
        let what = format!("bench run with {mem} MiB");
        if let Err(e) = check_clean_exit(&what, out) {
            errors.push(e);
            continue;
        }
        let lines = bench_lines(&out.console);
        if i == 0 {
            // Re-print tellus's lines exactly.
            for l in &lines {
                println!("{l}");
                values.push((l.name.clone(), l.value));
            }
            let tee = !out.console.contains("tellus: COVH not available");
            let tee_required = TEE_BENCHES.iter().copied().filter(|_| tee);
            for name in SBI_BENCHES.iter().copied().chain(tee_required) {
                if !lines.iter().any(|l| l.name == name) {
                    errors.push(describe_failure(
                        &format!("{what}: no `bench: {name} ...` line"),
                        out,
                    ));
                }
            }
        }
        match boot_line(&lines, mem) {
            Some(l) => {
                let name = gib_name(mem);
                // Print it under the size-specific name unless tellus already did.
                if i != 0 || l.name != name {
                    let renamed = BenchLine {
                        name: name.clone(),
                        ..l.clone()
                    };
                    println!("{renamed}");
                    values.push((name, l.value));
                }
                boot.push((mem, l.value, l.unit.clone()));
            }
            None => errors.push(describe_failure(
                &format!("{what}: no `bench: boot_to_host... ` line"),
                out,
            )),
        }
    }
    if let (Some(first), Some(last)) = (boot.first(), boot.last()) {
        if last.0 > first.0 && first.2 == last.2 {
            let per_gib = (last.1 - first.1) / (f64::from(last.0 - first.0) / 1024.0);
            let unit = if first.2.is_empty() {
                String::new()
            } else {
                format!(" {}", first.2)
            };
            println!("bench: boot_to_host_per_gib {per_gib:.0}{unit}");
        }
    }

    // 3: wall time of the normal suite (no -icount), median of WALL_RUNS.
    eprintln!("bench: timing the tellus suite ({WALL_RUNS} runs, {NCPU} harts, 2048 MiB)...");
    let mut walls = Vec::new();
    for i in 0..WALL_RUNS {
        let cfg = QemuConfig::with_images(&images)
            .ncpu(NCPU)
            .mem_mib(2048)
            .timeout(env_timeout(Duration::from_secs(120)));
        let out = run(&cfg);
        match check_tellus_passed(&out, 1) {
            Ok(_) => walls.push(out.wall.as_secs_f64()),
            Err(e) => errors.push(format!("tellus wall-time run {}: {e}", i + 1)),
        }
    }
    if walls.len() == WALL_RUNS {
        let m = median(walls);
        println!("bench: run_tellus_wall {m:.3} s");
        values.push(("run_tellus_wall".to_string(), m));
    }

    // Linux under Salus vs bare (linux_boot_ratio, traps, disk, net).
    let (figs, errs) = xtests::linux_bench::run_linux_benches();
    print_figures(&figs, &mut values);
    errors.extend(errs);

    // Scheduler, timer and IPI load (issue 14): wall-clock TCG, as users
    // run it, then instruction counts.
    let (figs, errs) = xtests::linux_bench::run_load_benches(None);
    print_figures(&figs, &mut values);
    errors.extend(errs);
    let (figs, errs) = xtests::linux_bench::run_load_benches(Some(ICOUNT));
    print_figures(&figs, &mut values);
    errors.extend(errs);

    // The Debian kernel as a TVM under tellus (issue 12).
    let (figs, errs) = xtests::tvm_bench::run_linux_tvm_bench(ICOUNT);
    print_figures(&figs, &mut values);
    errors.extend(errs);

    // TVMs from the Linux host: salus-vmm and salus-tsm.ko (issue 9).
    let (figs, errs) = xtests::vmm_bench::run_vmm_benches(ICOUNT);
    print_figures(&figs, &mut values);
    errors.extend(errs);

    // 4: targets.
    println!();
    println!("---- targets ----");
    for (name, target) in TARGETS {
        match values.iter().find(|(n, _)| n == name) {
            Some((_, v)) => {
                let verdict = if *v <= target { "OK" } else { "MISS" };
                let shown = if v.fract() == 0.0 {
                    format!("{v}")
                } else {
                    format!("{v:.3}")
                };
                println!("{name:<20} {shown:>14} <= {target:<12} {verdict}");
            }
            None => println!("{name:<20} {:>14} <= {target:<12} MISS (no value)", "-"),
        }
    }
    for (name, target, at_most) in [
        ("linux_boot_ratio", 1.05, true),
        ("linux_tvm_boot_ratio", 1.5, true),
        ("disk_ratio", 0.95, false),
        ("net_ratio", 0.95, false),
    ] {
        let cmp = if at_most { "<=" } else { ">=" };
        match values.iter().find(|(n, _)| n == name) {
            Some((_, v)) => {
                let ok = if at_most { *v <= target } else { *v >= target };
                let verdict = if ok { "OK" } else { "MISS" };
                println!("{name:<20} {v:>14.3} {cmp} {target:<12} {verdict}");
            }
            None => println!("{name:<20} {:>14} {cmp} {target:<12} MISS (no value)", "-"),
        }
    }

    finish(&errors)
}

fn print_figures(figs: &[xtests::linux_bench::Figure], values: &mut Vec<(String, f64)>) {
    for (name, v, unit) in figs {
        let shown = if v.fract() == 0.0 {
            format!("{v}")
        } else {
            format!("{v:.3}")
        };
        println!("bench: {name} {shown} {unit}");
        values.push((name.clone(), *v));
    }
}

fn finish(errors: &[String]) -> ExitCode {
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!();
        for e in errors {
            eprintln!("bench: error: {e}\n");
        }
        eprintln!("bench: {} run(s)/check(s) failed", errors.len());
        ExitCode::FAILURE
    }
}

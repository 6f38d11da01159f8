//! What `gqa bench --decode` prints and writes: the table (GPU and CPU layer, or the CPU layer
//! alone), the linear fits, the CSV, the plot and the JSON.

use std::time::Duration;

use gqa_ref::check::Tolerance;
use serde_json::json;

use crate::bench::{BenchArgs, CHECK_CSV_COLUMNS, ms, oracle_cell, oracle_csv, print_check_header, ratio_cell};
use crate::bench_decode::{Fit, Gpu, Row, fit};
use crate::error::CliError;

/// What the sweep measured, and what it prints and writes.
pub(crate) struct Report<'a> {
    /// The flags.
    pub(crate) args: &'a BenchArgs,
    /// One per cached length.
    pub(crate) rows: &'a [Row],
    /// The GPU side, on a GPU backend.
    pub(crate) gpu: Option<&'a Gpu>,
    /// B: the tokens one step gives.
    pub(crate) batch: usize,
    /// The main backend's description (the adapter, or the CPU layer).
    pub(crate) described: String,
    /// The tolerance of the main backend's check.
    pub(crate) tolerance: Tolerance,
    /// How the GPU's attention was timed.
    pub(crate) timing: String,
}

impl Report<'_> {
    /// The CSV, the plot, and the JSON or the table.
    pub(crate) fn write(&self, info: serde_json::Value, sweep: &crate::bench::Sweep) -> Result<(), CliError> {
        let (args, rows, b) = (self.args, self.rows, self.batch as f64);
        let points = |f: &dyn Fn(&Row) -> Option<Duration>| {
            rows.iter().filter_map(|r| f(r).map(|d| (r.seq as f64, ms(d)))).collect::<Vec<_>>()
        };
        // The GPU's per cache storage; the CPU layer's (f32) once per length; the oracle's over the
        // first storage's cache.
        let caches = args.caches();
        let first = |r: &Row| r.cache == caches[0];
        let gpu_fits: Vec<Option<Fit>> = caches
            .iter()
            .map(|&c| fit(&points(&|r| r.gpu.as_ref().filter(|_| r.cache == c).map(|g| g.step))))
            .collect();
        let cpu_fit = fit(&points(&|r| first(r).then_some(r.cpu)));
        let oracle_fit = fit(&points(&|r| r.oracle.filter(|_| first(r))));
        let (shape, options) = args.described(sweep);
        let checked = rows.iter().all(|r| r.check.checked());
        let meta = crate::meta::report_on(self.described.clone(), info, shape, options, checked);
        if let Some(path) = &args.csv {
            BenchArgs::write(path, &(crate::meta::csv_comments(&meta) + &self.csv()))?;
        }
        let plot_files = args.plot_files();
        if !plot_files.is_empty() {
            plot_files.write(&self.plot())?;
        }
        let fit_json = |f: &Option<Fit>| {
            f.map(|f| json!({ "ms_at_zero": f.intercept, "ms_per_1k_keys": f.slope * 1e3, "r2": f.r2 }))
        };
        if args.json {
            let table: Vec<_> = rows.iter().map(|r| self.json_row(r)).collect();
            let by_cache: serde_json::Map<_, _> =
                caches.iter().zip(&gpu_fits).map(|(c, f)| (c.name().to_string(), json!(fit_json(f)))).collect();
            let mut doc = json!({
                "rows": table,
                "cpu_layer": crate::cpu_layer::describe(),
                "fit": {
                    "gpu": fit_json(&gpu_fits[0]),
                    "gpu_by_cache": by_cache,
                    "cpu": fit_json(&cpu_fit),
                    "oracle": fit_json(&oracle_fit),
                },
            });
            let m = doc.as_object_mut().expect("a JSON object");
            if let Some(g) = self.gpu {
                m.insert("roofline".into(), json!({ "fma_gflops": g.roof.gflops, "copy_gbps": g.roof.gbps }));
            }
            m.extend(meta);
            println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialise"));
            return Ok(());
        }
        match self.gpu {
            Some(g) => {
                println!("adapter   {}", self.described);
                println!("cpu       {}", crate::cpu_layer::describe());
                println!("roofline  FMA probe {:.1} GFLOP/s, copy probe {:.2} GB/s", g.roof.gflops, g.roof.gbps);
            }
            None => println!("device    {}", self.described),
        }
        let who = if self.gpu.is_some() { "GPU and CPU layer" } else { "CPU layer" };
        println!(
            "shape     B={} Nq={} Nkv={} H={} Dq=Dv={}; one new token per step over S - 1 cached; median of {} {who} steps",
            sweep.batch, sweep.query_heads, sweep.kv_heads, sweep.head_dim, sweep.query_dim, args.runs
        );
        let window = args.window.map_or_else(
            || "no window: a linear cache of the longest S".to_string(),
            |w| format!("window {w}: ring caches of {w} tokens, a step attends over min(S, {w}) keys"),
        );
        let cpu_cache = if self.gpu.is_some() && caches.iter().any(|&c| c != gqa_core::CacheStorage::F32) {
            "; the CPU layer's f32, against an f32 oracle cache"
        } else {
            ""
        };
        let stored: Vec<String> = caches
            .iter()
            .filter_map(|&c| rows.iter().find(|r| r.cache == c))
            .map(|r| format!("{} ({} bytes per token)", r.cache, r.bytes_per_token))
            .collect();
        let layer = match self.gpu.map(|g| g.layer.precision()) {
            Some(gqa_core::Precision::F16) => "; the GPU layer in f16 (f16 storage, f32 accumulation)",
            _ => "",
        };
        println!("cache     {}{cpu_cache}{layer}; {window}\n", stored.join(", "));
        let what = if self.gpu.is_some() {
            "each GPU step's output (the warm-up's, every timed step's, the attention timer's) and the CPU layer's"
        } else {
            "each CPU layer step's output (the warm-up's and every timed step's)"
        };
        print_check_header(args.no_oracle, what, self.tolerance);
        if self.gpu.is_some() {
            self.print_gpu_table(b);
        } else {
            self.print_cpu_table(b);
        }
        let gpu_names = caches.iter().map(|c| format!("GPU {c}"));
        let fits = gpu_names.zip(gpu_fits).chain([("CPU".into(), cpu_fit), ("oracle".into(), oracle_fit)]);
        for (who, f) in fits {
            if let Some(f) = f {
                println!(
                    "\n{who:<8} ms per step = {:.2} + {:.3} per 1K cached keys (R² = {:.4})",
                    f.intercept,
                    f.slope * 1e3,
                    f.r2
                );
            }
        }
        Ok(())
    }

    fn print_gpu_table(&self, b: f64) {
        println!(
            "{:>7} {:>5} {:>11} {:>10} {:>10} {:>8} {:>9} {:>9} {:>8} {:>9} {:>9} {:>11} {:>9} {:>11} {:>10}",
            "S",
            "cache",
            "GPU ms",
            "tokens/s",
            "KV GB/s",
            "% copy",
            "attn ms",
            "attn GB/s",
            "% copy",
            "CPU ms",
            "vs CPU",
            "oracle ms",
            "check",
            "max abs err",
            "out of tol"
        );
        for r in self.rows {
            let Some(g) = &r.gpu else { continue };
            let (max_abs, bad) = r.check.cells();
            println!(
                "{:>7} {:>5} {:>11.2} {:>10.2} {:>10.3} {:>7.1}% {:>9.2} {:>9.3} {:>7.1}% {:>9.2} {:>9} {:>11} {:>9} {:>11} {:>10}",
                r.seq,
                r.cache.name(),
                ms(g.step),
                b / g.step.as_secs_f64(),
                gbps(r, g.step),
                g.copy_pct,
                ms(g.attention),
                gbps(r, g.attention),
                g.attention_copy_pct,
                ms(r.cpu),
                ratio_cell(r.vs_cpu()),
                oracle_cell(r.oracle),
                r.check.status(),
                max_abs,
                bad
            );
        }
        println!(
            "\n(GPU ms, KV GB/s: the whole step; attn: the appends and the attention over the cache alone, timed by {};\n % copy: each timed step against the copy probe run just before it, the median of those ratios;\n vs CPU: the CPU layer's step over the GPU's; oracle: the f64 reference's cache, one step, one thread)",
            self.timing
        );
    }

    fn print_cpu_table(&self, b: f64) {
        println!(
            "{:>7} {:>11} {:>10} {:>10} {:>11} {:>9} {:>11} {:>10}",
            "S", "CPU ms", "tokens/s", "KV GB/s", "oracle ms", "check", "max abs err", "out of tol"
        );
        for r in self.rows {
            let (max_abs, bad) = r.check.cells();
            println!(
                "{:>7} {:>11.3} {:>10.2} {:>10.3} {:>11} {:>9} {:>11} {:>10}",
                r.seq,
                ms(r.cpu),
                b / r.cpu.as_secs_f64(),
                gbps(r, r.cpu),
                oracle_cell(r.oracle),
                r.check.status(),
                max_abs,
                bad
            );
        }
    }

    fn json_row(&self, r: &Row) -> serde_json::Value {
        let b = self.batch as f64;
        let mut row = json!({
            "s": r.seq,
            "seq": r.seq,
            "keys": r.keys,
            "cache": r.cache.name(),
            "window": self.args.window,
            "bytes_per_token": r.bytes_per_token,
            "ms": ms(r.main()),
            "step_ms": ms(r.main()),
            "attn_ms": r.gpu.as_ref().map(|g| ms(g.attention)),
            "cpu_ms": ms(r.cpu),
            "cpu_tokens_per_s": b / r.cpu.as_secs_f64(),
            "cpu_kv_gbps": gbps(r, r.cpu),
            "cpu_gflops": r.flops / r.cpu.as_secs_f64() / 1e9,
            "oracle_ms": r.oracle.map(ms),
            "speedup_vs_oracle": r.oracle.map(|o| o.as_secs_f64() / r.main().as_secs_f64()),
        });
        let m = row.as_object_mut().expect("a JSON object");
        if let Some(g) = &r.gpu {
            let gpu = json!({
                "gpu_ms": ms(g.step),
                "tokens_per_s": b / g.step.as_secs_f64(),
                "kv_gbps": gbps(r, g.step),
                "copy_roofline_pct": g.copy_pct,
                "gpu_gflops": r.flops / g.step.as_secs_f64() / 1e9,
                "attention_ms": ms(g.attention),
                "attention_kv_gbps": gbps(r, g.attention),
                "attention_copy_roofline_pct": g.attention_copy_pct,
                "speedup_vs_cpu": r.vs_cpu(),
            });
            m.extend(gpu.as_object().cloned().unwrap_or_default());
        }
        m.extend(r.check.json());
        row
    }

    fn csv(&self) -> String {
        let b = self.batch as f64;
        let mut csv = if self.gpu.is_some() {
            format!(
                "seq,cache,gpu_ms,tokens_per_s,kv_gbps,copy_roofline_pct,gpu_gflops,attention_ms,attention_kv_gbps,attention_copy_roofline_pct,cpu_ms,speedup_vs_cpu,oracle_ms,speedup_vs_oracle,{CHECK_CSV_COLUMNS}\n",
            )
        } else {
            format!("seq,cpu_ms,cpu_tokens_per_s,cpu_kv_gbps,oracle_ms,speedup_vs_oracle,{CHECK_CSV_COLUMNS}\n")
        };
        for r in self.rows {
            let (oracle, speedup) = oracle_csv(r.oracle, r.main());
            csv += &r.seq.to_string();
            match &r.gpu {
                Some(g) => {
                    csv += &format!(
                        ",{},{:.4},{:.3},{:.4},{:.3},{:.4},{:.4},{:.4},{:.3},{:.4},{:.4}",
                        r.cache.name(),
                        ms(g.step),
                        b / g.step.as_secs_f64(),
                        gbps(r, g.step),
                        g.copy_pct,
                        r.flops / g.step.as_secs_f64() / 1e9,
                        ms(g.attention),
                        gbps(r, g.attention),
                        g.attention_copy_pct,
                        ms(r.cpu),
                        r.vs_cpu().unwrap_or_default(),
                    );
                }
                None => csv += &format!(",{:.4},{:.3},{:.4}", ms(r.cpu), b / r.cpu.as_secs_f64(), gbps(r, r.cpu)),
            }
            csv += &format!(",{oracle},{speedup},{}\n", r.check.csv());
        }
        csv
    }

    fn plot(&self) -> crate::plot::Plot {
        use crate::plot::{Plot, Scale, Series, SeriesKind};
        let caches = self.args.caches();
        let mut seqs: Vec<usize> = Vec::new();
        for r in self.rows {
            if !seqs.contains(&r.seq) {
                seqs.push(r.seq);
            }
        }
        // One value per length of the rows of `cache` (the first storage's for the CPU and oracle).
        let per_seq = |cache, f: &dyn Fn(&Row) -> Option<f64>| -> Vec<Option<f64>> {
            seqs.iter().map(|&s| self.rows.iter().find(|r| r.seq == s && r.cache == cache).and_then(f)).collect()
        };
        let mut series = Vec::new();
        if let Some(g) = self.gpu {
            for &c in &caches {
                let suffix = if caches.len() > 1 { format!(" ({c} cache)") } else { String::new() };
                series.push(Series {
                    name: format!("GPU step{suffix}"),
                    kind: SeriesKind::Measured,
                    y: per_seq(c, &|r| r.gpu.as_ref().map(|g| ms(g.step))),
                });
                series.push(Series {
                    name: format!("K and V read at the copy probe's {:.1} GB/s{suffix}", g.roof.gbps),
                    kind: SeriesKind::Bound,
                    y: per_seq(c, &|r| Some(r.kv_bytes / (g.roof.gbps * 1e9) * 1e3)),
                });
            }
        }
        series.push(Series {
            name: format!("CPU layer step (f32, {} threads)", crate::cpu_layer::threads()),
            kind: SeriesKind::Measured,
            y: per_seq(caches[0], &|r| Some(ms(r.cpu))),
        });
        series.push(Series {
            name: format!("CPU oracle (f64, {} cache)", caches[0]),
            kind: SeriesKind::Measured,
            y: per_seq(caches[0], &|r| r.oracle.map(ms)),
        });
        Plot {
            title: "gqa decode: time per step vs cached keys".into(),
            subtitle: self.described.clone(),
            x_title: "keys attended S (log scale)".into(),
            y_title: "time per step (ms, log scale)".into(),
            y_scale: Scale::Log,
            x: seqs,
            series,
        }
    }
}

/// K and V bytes read per second by a step (or the attention alone) that took `took`.
fn gbps(r: &Row, took: Duration) -> f64 {
    r.kv_bytes / took.as_secs_f64() / 1e9
}

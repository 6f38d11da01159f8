//! `gqa bench --decode --rope-qk-norm`: what RoPE and QK-norm cost a decoding step. Two layers of
//! the sweep's shape (no biases) with the same weights, one plain and one with Qwen3's RoPE
//! (wavelength 10^6) and QK-norm (`x / rms · scale`), decode one token over caches holding the same
//! `S - 1` keys; their timed steps alternate, so both see the same machine. Every output is
//! checked: the plain layer's against the oracle's KV cache, the other's against the oracle of
//! KerasHub's `Qwen3Attention` called on KerasHub's cache (the same keys in its first slots, the new
//! token written at index `S - 1`).

use serde_json::json;
use std::time::{Duration, Instant};

use gqa_core::kerashub::{KerasHubCache, KerasHubCall, KerasHubClass, KerasHubConfig};
use gqa_core::{CacheContents, ExtensionWeights, GqaConfig, HostTensor, LayerDims};
use gqa_wgpu::GqaLayer;

use crate::bench::{BenchArgs, data};
use crate::error::CliError;
use gqa_ref::check::{Tolerance, compare_tensors};

/// One length's result.
struct Row {
    seq: usize,
    plain: Duration,
    extended: Duration,
    checked: Option<bool>,
    worst: f32,
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs the comparison over the sweep's lengths.
pub(crate) fn bench_positions(args: &BenchArgs) -> Result<(), CliError> {
    let sweep = args.sweep();
    let (b, nq, nkv, h, dq) = (sweep.batch, sweep.query_heads, sweep.kv_heads, sweep.head_dim, sweep.query_dim);
    if args.backend.is_cpu() || args.window.is_some() || args.f16 || args.caches() != [gqa_core::CacheStorage::F32] {
        return Err(CliError::Flags(
            "--rope-qk-norm: GPU only, an f32 layer and cache, no --window (it compares one layer with and without)"
                .into(),
        ));
    }
    if let Some(&s) = sweep.seq.iter().find(|&&s| s < 2) {
        return Err(CliError::Flags(format!("--decode needs cached lengths >= 2, got {s}")));
    }
    let invalid = |what: &str| {
        let what = what.to_string();
        move |source| CliError::Inputs { inputs: what.clone(), source }
    };
    let config = GqaConfig { use_bias: false, ..GqaConfig::new(h, nq, nkv) };
    let dims = LayerDims { query_dim: dq, key_dim: dq, value_dim: dq };
    let weights = gqa_ref::initialize_weights(&config, dims, 7).map_err(invalid("bench config"))?;
    let qwen3 = json!({
        "num_query_heads": nq, "num_key_value_heads": nkv, "head_dim": h,
        "rope_max_wavelength": 1_000_000, "layer_norm_epsilon": 1e-6,
    });
    let spec = KerasHubConfig::from_value(KerasHubClass::Qwen3, &qwen3, dq).map_err(invalid("Qwen3 config"))?;
    let scale = |phase| Some(data(&[h], phase));
    let extra = ExtensionWeights { query_norm: scale(4.0), key_norm: scale(5.0), sinks: None };

    let ctx = crate::backend::open(args.backend)?;
    let tuning = args.tuning.apply(ctx.tuning());
    let ctx = ctx.with_tuning(tuning);
    let gpu_err = |what: String| move |source| CliError::Gpu { context: what.clone(), source };
    let plain = GqaLayer::new(&ctx, &config, &weights).map_err(gpu_err("uploading the layer".into()))?;
    let extended = GqaLayer::new(&ctx, &config, &weights)
        .and_then(|l| l.with_extensions(&spec.extensions, &extra))
        .map_err(gpu_err("uploading the layer with RoPE and QK-norm".into()))?;
    let oracle_ext = (!args.no_oracle)
        .then(|| gqa_ref::KerasHubLayer::new(spec.clone(), weights.clone(), extra.clone()))
        .transpose()
        .map_err(CliError::Invalid)?;
    // The token (a self-attention layer: query, key and value from the same hidden state).
    let x = data(&[b, 1, dq], 0.0);
    let runs = args.runs.max(1) as usize;
    let tolerance = Tolerance::F32;
    let mut rows = Vec::new();
    for &seq in &sweep.seq {
        let held = seq - 1;
        let kv_shape = [b, held, nkv, h];
        let contents =
            CacheContents { keys: data(&kv_shape, 2.0), values: data(&kv_shape, 3.0), lengths: vec![held; b] };
        // The oracles' outputs: the plain layer's cache, and KerasHub's cache of S slots.
        let wants = if args.no_oracle {
            None
        } else {
            let mut o = gqa_ref::KvCache::new(&config, b, seq).map_err(invalid("the oracle's cache"))?;
            o.load(&contents).map_err(invalid("the oracle's cache"))?;
            let plain_want = o.step(&config, &weights, &x, &x, None).map_err(invalid(&format!("S={seq}")))?;
            let pad = |t: &HostTensor| HostTensor::concat(&[t.clone(), HostTensor::zeros([b, 1, nkv, h])], 1);
            let cache = KerasHubCache {
                keys: pad(&contents.keys).map_err(CliError::Invalid)?,
                values: pad(&contents.values).map_err(CliError::Invalid)?,
            };
            let call = KerasHubCall::new(&x).with_cache(&cache, Some(held));
            let oracle = oracle_ext.as_ref().expect("made with the oracle");
            let ext_want = oracle.call(&call).map_err(invalid(&format!("S={seq}")))?.output;
            Some((plain_want, ext_want))
        };
        let mut caches = Vec::new();
        for layer in [&plain, &extended] {
            let mut cache = layer.new_cache(b, seq).map_err(gpu_err(format!("a cache of {seq} tokens")))?;
            cache.load(&contents).map_err(gpu_err("loading the cache".into()))?;
            caches.push(cache);
        }
        let mut checked = true;
        let mut worst = 0.0f32;
        let mut check = |which: usize, got: &HostTensor| {
            if let Some((p, e)) = &wants {
                let c = compare_tensors(got, if which == 0 { p } else { e }, tolerance);
                checked &= c.passed();
                worst = worst.max(c.max_abs);
            }
        };
        let mut times = [Vec::new(), Vec::new()];
        // A warm-up step each, then the timed steps alternating between the layers.
        for i in 0..=runs {
            for (which, layer) in [&plain, &extended].into_iter().enumerate() {
                let cache = &mut caches[which];
                let t = Instant::now();
                let out = layer.step(cache, &x, &x, None).map_err(gpu_err(format!("a step at S={seq}")))?;
                let took = t.elapsed();
                cache.truncate(held).map_err(gpu_err("rolling the cache back".into()))?;
                check(which, &out);
                if i > 0 {
                    times[which].push(took);
                }
            }
        }
        let [mut p, mut e] = times;
        rows.push(Row {
            seq,
            plain: median(&mut p),
            extended: median(&mut e),
            checked: (!args.no_oracle).then_some(checked),
            worst,
        });
    }
    report(args, &ctx, &rows, [b, nq, nkv, h, dq]);
    match rows.iter().filter(|r| r.checked == Some(false)).map(|r| format!("S={}", r.seq)).collect::<Vec<_>>() {
        failed if failed.is_empty() => Ok(()),
        failed => Err(CliError::CheckFailed { rows: failed.join(", ") }),
    }
}

fn report(args: &BenchArgs, ctx: &gqa_wgpu::GpuContext, rows: &[Row], [b, nq, nkv, h, dq]: [usize; 5]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let check = |r: &Row| match r.checked {
        None => "unchecked".to_string(),
        Some(true) => format!("pass ({:.1e})", r.worst),
        Some(false) => format!("FAIL ({:.1e})", r.worst),
    };
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "s": r.seq, "plain_step_ms": ms(r.plain), "rope_qk_norm_step_ms": ms(r.extended),
                    "ratio": ms(r.extended) / ms(r.plain), "checked": r.checked.unwrap_or(false),
                    "max_abs_diff": r.worst,
                })
            })
            .collect();
        let doc = json!({
            "date": crate::meta::now_utc(), "adapter": ctx.describe(),
            "adapter_info": crate::meta::adapter(ctx.adapter_info()),
            "shape": {"batch": b, "query_heads": nq, "kv_heads": nkv, "head_dim": h, "query_dim": dq},
            "options": {"rope": "Qwen3, wavelength 1e6", "qk_norm": "x / rms * scale, eps 1e-6", "runs": args.runs},
            "rows": list,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialize"));
        return;
    }
    println!("adapter: {}", ctx.describe());
    println!("decode step, B={b} Nq={nq} Nkv={nkv} H={h} Dq={dq}: plain vs RoPE + QK-norm (Qwen3's), same weights");
    println!("{:>8} {:>12} {:>16} {:>8}  check", "S", "plain ms", "rope+norm ms", "ratio");
    for r in rows {
        println!(
            "{:>8} {:>12.3} {:>16.3} {:>8.3}  {}",
            r.seq,
            ms(r.plain),
            ms(r.extended),
            ms(r.extended) / ms(r.plain),
            check(r)
        );
    }
}

//! `gqa run`: load a layer and inputs, run on the GPU (or the CPU layer, or the oracle), write the
//! results.

use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gqa_core::{CallOptions, CausalAlignment, ForwardOutput, MaskedRows};
use gqa_io::call::{alignment_name, masked_rows_name};
use gqa_io::{CallInputs, CallRecord, KerasLayer, LoadOptions};
use gqa_wgpu::{GpuError, GqaLayer};

use crate::args::{LayerArgs, RunArgs, either};
use crate::backend;
use crate::error::CliError;

/// Loads the layer named by the flags.
pub fn load(args: &LayerArgs) -> Result<KerasLayer, CliError> {
    let options = LoadOptions { config: args.config.as_deref(), layer_name: args.layer_name.as_deref() };
    Ok(gqa_io::load_layer(&args.layer, &options)?)
}

/// The KerasHub layer of the flags' file, when it holds one (see `gqa_io::kerashub_keras::load_kerashub`).
pub fn kerashub_layer(args: &LayerArgs) -> Result<Option<gqa_io::kerashub::KerasHubLayerFile>, CliError> {
    let class = args
        .class
        .as_deref()
        .map(|name| {
            gqa_core::kerashub::KerasHubClass::from_class_name(name).ok_or_else(|| {
                let known = gqa_core::kerashub::KerasHubClass::ALL.map(|c| c.class_name()).join(", ");
                CliError::Flags(format!("--class {name}: not a KerasHub attention class ({known})"))
            })
        })
        .transpose()?;
    let file =
        gqa_io::kerashub_keras::load_kerashub(&args.layer, args.config.as_deref(), class, args.layer_name.as_deref())?;
    if file.is_none() && class.is_some() {
        return Err(CliError::Flags("--class: the config given with --config is not a KerasHub layer's".into()));
    }
    Ok(file)
}

/// One call option: the flag's value (`None`: not given), the inputs file's (`None`: not recorded)
/// and the default; the flag wins, then the file. Says where the value came from, and returns the
/// note to print when the flag overrides a different value the file records.
fn resolve<T: PartialEq + Copy>(
    flag: Option<T>,
    file: Option<T>,
    default: T,
    flag_name: impl Fn(T) -> String,
    file_entry: impl Fn(T) -> String,
) -> (T, Source, Option<String>) {
    match (flag, file) {
        (Some(f), Some(r)) if f != r => {
            (f, Source::Flag, Some(format!("note: {} overrides the inputs file's {}", flag_name(f), file_entry(r))))
        }
        (Some(f), _) => (f, Source::Flag, None),
        (None, Some(r)) => (r, Source::File, None),
        (None, None) => (default, Source::Default, None),
    }
}

/// Where a call option's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flag,
    File,
    Default,
}

/// The options of the call: each from its flag when given, else from the inputs file's `call`
/// record, else its default; the masks from the inputs file. Returns them with one line describing
/// them (where each came from) and the notes for flags that override the file.
fn call_options(
    args: &RunArgs,
    inputs: &CallInputs,
    record: Option<&CallRecord>,
) -> (CallOptions, String, Vec<String>) {
    let file = record.cloned().unwrap_or_default();
    let on_off = |name: &'static str| move |v: bool| if v { format!("--{name}") } else { format!("--no-{name}") };
    let entry = |key: &'static str| move |v: bool| format!("{key}: {v}");
    let mut notes = Vec::new();
    let mut described = Vec::new();
    let mut note = |what: String, value: String, source: Source, n: Option<String>| {
        let from = match source {
            Source::Flag => " (flag)",
            Source::File => " (inputs file)",
            Source::Default => "",
        };
        described.push(format!("{what}={value}{from}"));
        notes.extend(n);
    };
    let (causal, src, n) = resolve(
        either(args.causal, args.no_causal),
        file.use_causal_mask,
        false,
        on_off("causal"),
        entry("use_causal_mask"),
    );
    note("use_causal_mask".into(), causal.to_string(), src, n);
    let flag_alignment = args.causal_alignment.map(CausalAlignment::from);
    let (alignment, src, n) = resolve(
        flag_alignment,
        file.causal_alignment,
        CausalAlignment::TopLeft,
        |a| format!("--causal-alignment {}", alignment_name(a)),
        |a| format!("causal_alignment: {}", alignment_name(a)),
    );
    note("causal_alignment".into(), alignment_name(alignment).into(), src, n);
    let flag_rows = args.masked_rows.map(MaskedRows::from);
    let (masked_rows, src, n) = resolve(
        flag_rows,
        file.masked_rows,
        MaskedRows::Zeros,
        |m| format!("--masked-rows {}", masked_rows_name(m)),
        |m| format!("masked_rows: {}", masked_rows_name(m)),
    );
    note("masked_rows".into(), masked_rows_name(masked_rows).into(), src, n);
    let (scores, src, n) = resolve(
        either(args.scores, args.no_scores),
        file.return_attention_scores,
        false,
        on_off("scores"),
        entry("return_attention_scores"),
    );
    note("return_attention_scores".into(), scores.to_string(), src, n);
    let (training, src, n) =
        resolve(either(args.training, args.no_training), file.training, false, on_off("training"), entry("training"));
    note("training".into(), training.to_string(), src, n);
    let mut o = CallOptions {
        use_causal_mask: causal,
        causal_alignment: alignment,
        return_attention_scores: scores,
        training,
        masked_rows,
        ..Default::default()
    };
    if training {
        // Without a seed from either, the layer's seed applies (CallOptions::dropout_seed None).
        let (seed, src, n) = resolve(
            args.seed.map(Some),
            file.seed.map(Some),
            None,
            |s| format!("--seed {}", s.unwrap_or_default()),
            |s| format!("seed: {}", s.unwrap_or_default()),
        );
        if let Some(s) = seed {
            note("seed".into(), s.to_string(), src, n);
        }
        o.dropout_seed = seed;
    }
    inputs.apply_masks(&mut o);
    (o, described.join(", "), notes)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// What `gqa run` reports: lines of text, or (with `--json`) one JSON object at the end.
struct Summary {
    /// Print JSON instead of the lines.
    json: bool,
    /// The JSON report.
    doc: serde_json::Map<String, serde_json::Value>,
}

impl Summary {
    /// Prints `text` unless the report is JSON.
    fn line(&self, text: String) {
        if !self.json {
            println!("{text}");
        }
    }

    /// Records `key` in the JSON report.
    fn set(&mut self, key: &str, value: serde_json::Value) {
        self.doc.insert(key.into(), value);
    }
}

/// Runs the command; prints what was loaded, the device and the times (as JSON with `--json`).
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    if let Some(file) = kerashub_layer(&args.layer)? {
        return crate::run_kerashub::run(args, file);
    }
    let mut summary = Summary { json: args.json, doc: serde_json::Map::new() };
    summary.set("date", json!(crate::meta::now_utc()));
    let inputs_file = args.inputs.display().to_string();
    let t0 = Instant::now();
    let layer = load(&args.layer)?;
    let (inputs, record) = CallInputs::read_with_call(&args.inputs)?;
    let c = &layer.config;
    let d = layer.dims;
    let load_time = t0.elapsed();
    summary.line(format!(
        "layer: {} (Nq={}, Nkv={}, head_dim={}, Dq={}, Dk={}, Dv={}) from {} ({})",
        c.name,
        c.num_query_heads,
        c.num_key_value_heads,
        c.head_dim,
        d.query_dim,
        d.key_dim,
        d.value_dim,
        args.layer.layer.display(),
        ms(load_time)
    ));
    summary.set(
        "layer",
        json!({
            "name": c.name, "file": args.layer.layer.display().to_string(),
            "query_heads": c.num_query_heads, "kv_heads": c.num_key_value_heads, "head_dim": c.head_dim,
            "query_dim": d.query_dim, "key_dim": d.key_dim, "value_dim": d.value_dim,
        }),
    );
    summary.set("shape", json!({ "query": inputs.query.shape(), "value": inputs.value.shape() }));
    summary.set("load_ms", json!(load_time.as_secs_f64() * 1e3));
    let (options, described, notes) = call_options(args, &inputs, record.as_ref());
    for note in notes {
        eprintln!("{note}");
    }
    summary.line(format!("call: {described}"));
    let call_json = CallRecord::of(&options).to_json();
    summary.set("options", serde_json::from_str(&call_json).unwrap_or(json!(call_json)));
    let key = inputs.key.as_ref();
    let (device, out) = if args.reference {
        let t = Instant::now();
        let out = gqa_ref::forward(c, &layer.weights, &inputs.query, &inputs.value, key, &options)
            .map_err(|source| CliError::Inputs { inputs: inputs_file.clone(), source })?;
        summary.line("device: CPU reference (gqa-ref, f64)".into());
        summary.line(format!("time: forward {}", ms(t.elapsed())));
        summary.set("adapter", json!("cpu-reference"));
        summary.set("forward_ms", json!(t.elapsed().as_secs_f64() * 1e3));
        ("cpu-reference".to_string(), out)
    } else if args.backend.is_cpu() {
        cpu(&layer, &inputs, &options, &inputs_file, &mut summary)?
    } else {
        gpu(args, &layer, &inputs, &options, &inputs_file, &mut summary)?
    };
    let mut meta = BTreeMap::new();
    meta.insert(gqa_io::CALL_KEY.to_string(), call_json);
    meta.insert("device".to_string(), device);
    meta.insert("layer".to_string(), c.name.clone());
    gqa_io::write_outputs(&args.output, &out, meta)?;
    let scores = out.scores.as_ref().map(|s| format!(", scores {:?}", s.shape())).unwrap_or_default();
    summary.line(format!("wrote {}: output {:?}{scores}", args.output.display(), out.output.shape()));
    summary.set("output", json!(args.output.display().to_string()));
    summary.set("output_shape", json!(out.output.shape()));
    summary.set("scores_shape", json!(out.scores.as_ref().map(|s| s.shape().to_vec())));
    // `gqa run` computes; it does not compare with the oracle (`gqa demo` and `gqa bench` do).
    summary.set("checked", json!(false));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary.doc).expect("JSON values serialize"));
    }
    Ok(())
}

/// The CPU layer's path (`--backend cpu`): check the weights, run; reports the layer and the times.
fn cpu(
    layer: &KerasLayer,
    inputs: &CallInputs,
    options: &CallOptions,
    inputs_file: &str,
    summary: &mut Summary,
) -> Result<(String, ForwardOutput), CliError> {
    let described = crate::cpu_layer::describe();
    summary.line(format!("device: {described}"));
    summary.set("adapter", json!(described));
    summary.set("adapter_info", crate::cpu_layer::info());
    let t = Instant::now();
    let cpu = gqa_cpu::CpuLayer::new(layer.config.clone(), layer.weights.clone()).map_err(CliError::Invalid)?;
    let build = t.elapsed();
    let t = Instant::now();
    let out = cpu
        .forward(&inputs.query, &inputs.value, inputs.key.as_ref(), options)
        .map_err(|source| CliError::Inputs { inputs: inputs_file.into(), source })?;
    let forward = t.elapsed();
    summary.line(format!("time: forward {} (first call; weights checked and copied {})", ms(forward), ms(build)));
    summary.set("forward_ms", json!(forward.as_secs_f64() * 1e3));
    summary.set("upload_ms", json!(build.as_secs_f64() * 1e3));
    summary.set("threads", json!(crate::cpu_layer::threads()));
    summary.set("precision", json!("f32"));
    Ok((described, out))
}

/// The GPU path: open the adapter, upload the weights, run; reports the adapter and the times.
fn gpu(
    args: &RunArgs,
    layer: &KerasLayer,
    inputs: &CallInputs,
    options: &CallOptions,
    inputs_file: &str,
    summary: &mut Summary,
) -> Result<(String, ForwardOutput), CliError> {
    let t = Instant::now();
    let ctx = backend::open(args.backend)?;
    let open = t.elapsed();
    summary.line(format!("adapter: {}", ctx.describe()));
    summary.set("adapter", json!(ctx.describe()));
    summary.set("adapter_info", crate::meta::adapter(ctx.adapter_info()));
    let t = Instant::now();
    let gpu = GqaLayer::new(&ctx, &layer.config, &layer.weights)
        .map_err(|source| CliError::Gpu { context: format!("uploading the layer to {}", ctx.describe()), source })?;
    let upload = t.elapsed();
    let t = Instant::now();
    let out = gpu.forward(&inputs.query, &inputs.value, inputs.key.as_ref(), options).map_err(|e| match e {
        GpuError::Invalid(source) => CliError::Inputs { inputs: inputs_file.into(), source },
        source => CliError::Gpu { context: format!("running on {}", ctx.describe()), source },
    })?;
    let forward = t.elapsed();
    summary.line(format!(
        "time: forward {} (first call: includes input upload and readback; adapter open {}, weights upload {})",
        ms(forward),
        ms(open),
        ms(upload)
    ));
    summary.set("forward_ms", json!(forward.as_secs_f64() * 1e3));
    summary.set("context_ms", json!(open.as_secs_f64() * 1e3));
    summary.set("upload_ms", json!(upload.as_secs_f64() * 1e3));
    Ok((ctx.describe(), out))
}

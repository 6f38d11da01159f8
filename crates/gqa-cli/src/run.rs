//! `gqa run`: load a layer and inputs, run on the GPU (or the oracle), write the results.

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

/// Runs the command; prints what was loaded, the device and the times.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let inputs_file = args.inputs.display().to_string();
    let t0 = Instant::now();
    let layer = load(&args.layer)?;
    let (inputs, record) = CallInputs::read_with_call(&args.inputs)?;
    let c = &layer.config;
    let d = layer.dims;
    println!(
        "layer: {} (Nq={}, Nkv={}, head_dim={}, Dq={}, Dk={}, Dv={}) from {} ({})",
        c.name,
        c.num_query_heads,
        c.num_key_value_heads,
        c.head_dim,
        d.query_dim,
        d.key_dim,
        d.value_dim,
        args.layer.layer.display(),
        ms(t0.elapsed())
    );
    let (options, described, notes) = call_options(args, &inputs, record.as_ref());
    for note in notes {
        eprintln!("{note}");
    }
    println!("call: {described}");
    let key = inputs.key.as_ref();
    let (device, out) = if args.reference {
        let t = Instant::now();
        let out = gqa_ref::forward(c, &layer.weights, &inputs.query, &inputs.value, key, &options)
            .map_err(|source| CliError::Inputs { inputs: inputs_file.clone(), source })?;
        println!("device: CPU reference (gqa-ref, f64)");
        println!("time: forward {}", ms(t.elapsed()));
        ("cpu-reference".to_string(), out)
    } else {
        gpu(args, &layer, &inputs, &options, &inputs_file)?
    };
    let mut meta = BTreeMap::new();
    meta.insert(gqa_io::CALL_KEY.to_string(), CallRecord::of(&options).to_json());
    meta.insert("device".to_string(), device);
    meta.insert("layer".to_string(), c.name.clone());
    gqa_io::write_outputs(&args.output, &out, meta)?;
    let scores = out.scores.as_ref().map(|s| format!(", scores {:?}", s.shape())).unwrap_or_default();
    println!("wrote {}: output {:?}{scores}", args.output.display(), out.output.shape());
    Ok(())
}

/// The GPU path: open the adapter, upload the weights, run; prints the adapter and the times.
fn gpu(
    args: &RunArgs,
    layer: &KerasLayer,
    inputs: &CallInputs,
    options: &CallOptions,
    inputs_file: &str,
) -> Result<(String, ForwardOutput), CliError> {
    let t = Instant::now();
    let ctx = backend::open(args.backend)?;
    let open = t.elapsed();
    println!("adapter: {}", ctx.describe());
    let t = Instant::now();
    let gpu = GqaLayer::new(&ctx, &layer.config, &layer.weights)
        .map_err(|source| CliError::Gpu { context: format!("uploading the layer to {}", ctx.describe()), source })?;
    let upload = t.elapsed();
    let t = Instant::now();
    let out = gpu.forward(&inputs.query, &inputs.value, inputs.key.as_ref(), options).map_err(|e| match e {
        GpuError::Invalid(source) => CliError::Inputs { inputs: inputs_file.into(), source },
        source => CliError::Gpu { context: format!("running on {}", ctx.describe()), source },
    })?;
    println!(
        "time: forward {} (first call: includes input upload and readback; adapter open {}, weights upload {})",
        ms(t.elapsed()),
        ms(open),
        ms(upload)
    );
    Ok((ctx.describe(), out))
}

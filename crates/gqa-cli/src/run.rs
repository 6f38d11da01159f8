//! `gqa run`: load a layer and inputs, run on the GPU (or the oracle), write the results.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gqa_core::{CallOptions, CausalAlignment, ForwardOutput, MaskedRows};
use gqa_io::{CallInputs, KerasLayer, LoadOptions};
use gqa_wgpu::{GpuError, GqaLayer};
use serde_json::json;

use crate::args::{Alignment, LayerArgs, MaskedRowsArg, RunArgs};
use crate::backend;
use crate::error::CliError;

/// Loads the layer named by the flags.
pub fn load(args: &LayerArgs) -> Result<KerasLayer, CliError> {
    let options = LoadOptions { config: args.config.as_deref(), layer_name: args.layer_name.as_deref() };
    Ok(gqa_io::load_layer(&args.layer, &options)?)
}

/// The call's options from the flags and the inputs' masks.
fn call_options(args: &RunArgs, inputs: &CallInputs) -> CallOptions {
    let mut o = CallOptions {
        use_causal_mask: args.causal,
        causal_alignment: match args.causal_alignment {
            Alignment::TopLeft => CausalAlignment::TopLeft,
            Alignment::BottomRight => CausalAlignment::BottomRight,
        },
        return_attention_scores: args.scores,
        training: args.training,
        masked_rows: match args.masked_rows {
            MaskedRowsArg::Zeros => MaskedRows::Zeros,
            MaskedRowsArg::KerasDefault => MaskedRows::KerasDefault,
        },
        dropout_seed: args.seed,
        ..Default::default()
    };
    inputs.apply_masks(&mut o);
    o
}

/// The options as recorded in the output's metadata `call` (what `tools/keras_fixtures.py --check` reads).
fn call_json(args: &RunArgs) -> String {
    json!({
        "use_causal_mask": args.causal,
        "causal_alignment": value_name(args.causal_alignment),
        "masked_rows": value_name(args.masked_rows),
        "return_attention_scores": args.scores,
        "training": args.training,
        "seed": args.seed,
    })
    .to_string()
}

/// The flag value of an enum (`top-left`, `keras-default` ...).
fn value_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs the command; prints what was loaded, the device and the times.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let inputs_file = args.inputs.display().to_string();
    let t0 = Instant::now();
    let layer = load(&args.layer)?;
    let inputs = CallInputs::read(&args.inputs)?;
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
    let options = call_options(args, &inputs);
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
    meta.insert("call".to_string(), call_json(args));
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

//! `gqa run` on a KerasHub attention layer (the file's metadata `class_name` names one): its call
//! arguments from the inputs file (`hidden_states` or `x`, `attention_mask`, `cache` or `cache.0` /
//! `cache.1`, `cache_update_mask`; metadata `call` with `cache_update_index`), run on the GPU or
//! the oracle; the output file holds `output` and, for cached calls, the updated cache in the
//! layer's own form.

use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

use gqa_core::MaskedRows;
use gqa_core::kerashub::KerasHubCall;
use gqa_io::call::masked_rows_name;
use gqa_io::kerashub::{CLASS_KEY, KerasHubInputs, KerasHubLayerFile, insert_outputs};
use gqa_io::{CallRecord, TensorFile};
use gqa_wgpu::GpuError;

use crate::args::RunArgs;
use crate::backend;
use crate::error::CliError;

/// The flags that set `GroupQueryAttention`'s call options, which a KerasHub call does not have.
fn refuse_gqa_flags(args: &RunArgs) -> Result<(), CliError> {
    let given = [
        ("--causal / --no-causal", args.causal || args.no_causal),
        ("--causal-alignment", args.causal_alignment.is_some()),
        ("--scores / --no-scores", args.scores || args.no_scores),
        ("--training / --no-training", args.training || args.no_training),
    ];
    match given.iter().find(|(_, on)| *on) {
        Some((flag, _)) => Err(CliError::Flags(format!(
            "{flag} does not apply to a KerasHub layer: its call takes attention_mask (the decoder's causal mask \
             included), cache and cache_update_index from the inputs file"
        ))),
        None => Ok(()),
    }
}

/// Runs the KerasHub layer `file` read from the flags' layer file.
pub fn run(args: &RunArgs, file: KerasHubLayerFile) -> Result<(), CliError> {
    let class = file.spec.class;
    refuse_gqa_flags(args)?;
    if args.backend.is_cpu() {
        return Err(CliError::Flags(format!(
            "--backend cpu: the CPU layer runs GroupQueryAttention only; run {class} on a GPU or with --reference"
        )));
    }
    let mut doc = serde_json::Map::new();
    let line = |text: String| {
        if !args.json {
            println!("{text}");
        }
    };
    doc.insert("date".into(), json!(crate::meta::now_utc()));
    let t0 = Instant::now();
    let inputs_tf = TensorFile::read(&args.inputs)?;
    let inputs = KerasHubInputs::from_tensor_file(&inputs_tf, class)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let spec = &file.spec;
    let c = &spec.config;
    line(format!(
        "layer: {} {} (Nq={}, Nkv={}, head_dim={}, hidden={}) from {} ({load_ms:.2} ms)",
        class,
        c.name,
        c.num_query_heads,
        c.num_key_value_heads,
        c.head_dim,
        spec.hidden_dim,
        args.layer.layer.display()
    ));
    let options: BTreeMap<&str, String> = spec.extensions.describe(c.head_dim).into_iter().collect();
    for (name, value) in &options {
        line(format!("  {name}: {value}"));
    }
    doc.insert(
        "layer".into(),
        json!({
            "class_name": class.class_name(), "name": c.name, "file": args.layer.layer.display().to_string(),
            "query_heads": c.num_query_heads, "kv_heads": c.num_key_value_heads, "head_dim": c.head_dim,
            "hidden_dim": spec.hidden_dim, "options": options,
        }),
    );
    let masked_rows = args.masked_rows.map(MaskedRows::from).or(inputs.record.masked_rows).unwrap_or(MaskedRows::Zeros);
    let index = inputs.record.cache_update_index;
    line(format!(
        "call: {} {:?}, cache {}, cache_update_index {}, masked_rows {}",
        class.input_name(),
        inputs.input.shape(),
        inputs.cache.as_ref().map_or("none".to_string(), |k| format!("{:?}", k.keys.shape())),
        index.map_or("none".to_string(), |i| i.to_string()),
        masked_rows_name(masked_rows)
    ));
    let call = KerasHubCall {
        input: &inputs.input,
        attention_mask: inputs.attention_mask.as_ref(),
        cache: inputs.cache.as_ref(),
        cache_update_index: index,
        cache_update_mask: inputs.cache_update_mask.as_ref(),
        masked_rows,
    };
    let inputs_file = args.inputs.display().to_string();
    let invalid = |source| CliError::Inputs { inputs: inputs_file.clone(), source };
    let t = Instant::now();
    let (device, out) = if args.reference {
        let oracle = gqa_ref::KerasHubLayer::new(file.spec.clone(), file.weights.clone(), file.extra.clone())
            .map_err(CliError::Invalid)?;
        ("cpu-reference".to_string(), oracle.call(&call).map_err(invalid)?)
    } else {
        let ctx = backend::open(args.backend)?;
        let gpu =
            gqa_wgpu::KerasHubLayer::new(&ctx, file.spec.clone(), &file.weights, &file.extra).map_err(|source| {
                CliError::Gpu { context: format!("uploading the layer to {}", ctx.describe()), source }
            })?;
        let out = gpu.call(&call).map_err(|e| match e {
            GpuError::Invalid(source) => invalid(source),
            source => CliError::Gpu { context: format!("running on {}", ctx.describe()), source },
        })?;
        (ctx.describe(), out)
    };
    let call_ms = t.elapsed().as_secs_f64() * 1e3;
    line(format!("device: {device}"));
    line(format!("time: call {call_ms:.2} ms (with the adapter's opening and the weights' upload)"));
    let record = CallRecord { masked_rows: Some(masked_rows), cache_update_index: index, ..Default::default() };
    let mut tf = TensorFile::new(args.output.display().to_string());
    insert_outputs(&mut tf, "", class, &out.output, out.cache.as_ref());
    tf.metadata.insert(gqa_io::CALL_KEY.into(), record.to_json());
    tf.metadata.insert(CLASS_KEY.into(), class.class_name().into());
    tf.metadata.insert("device".into(), device.clone());
    tf.metadata.insert("layer".into(), c.name.clone());
    tf.write(&args.output)?;
    line(format!(
        "wrote {}: output {:?}{}",
        args.output.display(),
        out.output.shape(),
        match &out.cache {
            Some(k) => format!(", cache {:?}", k.keys.shape()),
            None => String::new(),
        }
    ));
    doc.insert("adapter".into(), json!(device));
    doc.insert("call_ms".into(), json!(call_ms));
    doc.insert("load_ms".into(), json!(load_ms));
    doc.insert("options".into(), serde_json::from_str(&record.to_json()).unwrap_or_default());
    doc.insert("output".into(), json!(args.output.display().to_string()));
    doc.insert("output_shape".into(), json!(out.output.shape()));
    doc.insert("checked".into(), json!(false));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialize"));
    }
    Ok(())
}

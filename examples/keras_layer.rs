//! Loads a Keras `GroupQueryAttention` layer from a file (`.keras`, `.weights.h5` with its config,
//! or safetensors) with `gqa-io`, runs it on the GPU over a call's inputs, and compares with the
//! CPU oracle and, when the inputs file has it, with the output Keras computed.
//!
//! ```sh
//! # the defaults: a Keras model with two attention layers, and the inputs and outputs Keras wrote
//! cargo run --release --example keras_layer
//! cargo run --release --example keras_layer -- model.keras my_attention inputs.safetensors
//! ```
//!
//! The inputs file is safetensors with `query`, `value`, optional `key` and masks (the format of
//! `gqa run --inputs`); an `output` tensor in it (as in `tests/fixtures/keras/`) is Keras' output,
//! and metadata `call` = `{"use_causal_mask": true}` sets the causal mask.

use std::path::{Path, PathBuf};

use gqa::core::{CallOptions, HostTensor};
use gqa::gpu::{GpuContext, GqaLayer};
use gqa_io::{CallInputs, LoadOptions, TensorFile};

/// What [`run`] computed.
pub struct KerasRun {
    /// The layer's name in the file.
    pub name: String,
    /// The GPU's output.
    pub output: HostTensor,
    /// The oracle's output.
    pub oracle: HostTensor,
    /// Keras' output, when the inputs file has one.
    pub keras: Option<HostTensor>,
}

/// The fixture used when no file is given.
pub fn default_paths() -> (PathBuf, String, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras");
    (dir.join("keras_model.keras"), "attn_in_model".into(), dir.join("keras_model.safetensors"))
}

/// Loads the layer `layer_name` of `layer_file` and runs it on `ctx` over the call in `inputs`.
pub fn run(
    ctx: &GpuContext,
    layer_file: &Path,
    layer_name: Option<&str>,
    inputs: &Path,
) -> Result<KerasRun, Box<dyn std::error::Error>> {
    let keras = gqa_io::load_layer(layer_file, &LoadOptions { layer_name, ..Default::default() })?;
    let file = TensorFile::read(inputs)?;
    let call = CallInputs::from_tensor_file(&file)?;
    let causal = file
        .metadata
        .get("call")
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|c| c["use_causal_mask"].as_bool())
        .unwrap_or(false);
    let mut options = CallOptions { use_causal_mask: causal, ..Default::default() };
    call.apply_masks(&mut options);

    let layer = GqaLayer::new(ctx, &keras.config, &keras.weights)?;
    let output = layer.forward(&call.query, &call.value, call.key.as_ref(), &options)?.output;
    let oracle =
        gqa::reference::forward(&keras.config, &keras.weights, &call.query, &call.value, call.key.as_ref(), &options)?
            .output;
    Ok(KerasRun { name: keras.config.name.clone(), output, oracle, keras: file.f32_opt("output")? })
}

fn max_diff(a: &HostTensor, b: &HostTensor) -> f32 {
    a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[allow(dead_code, reason = "tests/api_examples.rs includes this file and calls `run`")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (default_file, default_name, default_inputs) = default_paths();
    let layer_file = args.first().map(PathBuf::from).unwrap_or(default_file);
    let layer_name = args.get(1).cloned().or((args.is_empty()).then_some(default_name));
    let inputs = args.get(2).map(PathBuf::from).unwrap_or(default_inputs);

    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    let r = run(&ctx, &layer_file, layer_name.as_deref(), &inputs)?;
    println!("layer {:?} from {}: output {:?}", r.name, layer_file.display(), r.output.shape());
    println!("max |gpu - oracle| = {:e}", max_diff(&r.output, &r.oracle));
    if let Some(keras) = &r.keras {
        println!("max |gpu - keras|  = {:e}", max_diff(&r.output, keras));
    }
    Ok(())
}

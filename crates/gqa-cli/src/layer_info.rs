//! `gqa info --layer FILE`: what a layer file holds: its class (Keras' `GroupQueryAttention` or a
//! KerasHub attention class), heads, sizes and attention options.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::args::{InfoArgs, LayerArgs};
use crate::error::CliError;

/// Prints the layer of `path` (as JSON with `--json`).
pub fn describe(path: &Path, args: &InfoArgs) -> Result<(), CliError> {
    let layer_args = LayerArgs {
        layer: path.to_path_buf(),
        config: args.config.clone(),
        layer_name: args.layer_name.clone(),
        class: args.class.clone(),
    };
    let layer = match crate::run::kerashub_layer(&layer_args)? {
        Some(file) => {
            let (spec, c) = (&file.spec, &file.spec.config);
            let options: BTreeMap<&str, String> = spec.extensions.describe(c.head_dim).into_iter().collect();
            json!({
                "class_name": spec.class.class_name(), "name": c.name, "file": path.display().to_string(),
                "query_heads": c.num_query_heads, "kv_heads": c.num_key_value_heads, "head_dim": c.head_dim,
                "hidden_dim": spec.hidden_dim, "biases": c.use_bias, "options": options,
                "input": spec.class.input_name(),
            })
        }
        None => {
            let layer = crate::run::load(&layer_args)?;
            let (c, d) = (&layer.config, layer.dims);
            let mut options = BTreeMap::new();
            options.insert("scale", format!("1/sqrt({})", c.head_dim));
            if let Some(w) = c.sliding_window {
                options.insert("window", format!("|i - j| < {w}"));
            }
            if c.use_gate {
                options.insert("gate", "sigmoid(query projection) multiplies the attention output".into());
            }
            json!({
                "class_name": "GroupQueryAttention", "name": c.name, "file": path.display().to_string(),
                "query_heads": c.num_query_heads, "kv_heads": c.num_key_value_heads, "head_dim": c.head_dim,
                "query_dim": d.query_dim, "key_dim": d.key_dim, "value_dim": d.value_dim,
                "biases": c.use_bias, "dropout": c.dropout, "options": options,
            })
        }
    };
    if args.json {
        let report = json!({"date": crate::meta::now_utc(), "layer": layer});
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON values serialize"));
        return Ok(());
    }
    let field = |k: &str| layer.get(k).map(|v| v.to_string()).unwrap_or_default();
    println!("layer: {} {} from {}", str_of(&layer["class_name"]), str_of(&layer["name"]), str_of(&layer["file"]));
    let sizes: Vec<String> = ["query_heads", "kv_heads", "head_dim", "hidden_dim", "query_dim", "key_dim", "value_dim"]
        .iter()
        .filter(|k| layer.get(**k).is_some())
        .map(|k| format!("{k} {}", field(k)))
        .collect();
    println!("  {}, biases {}", sizes.join(", "), field("biases"));
    if let Some(options) = layer["options"].as_object() {
        for (name, value) in options {
            println!("  {name}: {}", str_of(value));
        }
    }
    Ok(())
}

fn str_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

//! Bad input gives an error value that names what is wrong; nothing panics.

mod common;

use common::{adapters, random_tensor, random_weights, rng};
use gqa::core::{CallOptions, GqaConfig, GqaError, HostTensor, LayerDims, Mask};
use gqa::gpu::{GpuError, GqaLayer};

fn layer() -> (GqaLayer, GqaConfig) {
    let cfg = GqaConfig::new(4, 4, 2);
    let w = random_weights(&cfg, LayerDims { query_dim: 6, key_dim: 6, value_dim: 6 }, 1);
    (GqaLayer::new(&adapters()[0], &cfg, &w).unwrap(), cfg)
}

fn t(shape: &[usize]) -> HostTensor {
    random_tensor(shape, &mut rng(2))
}

/// Runs the GPU layer and the oracle on the same bad call; both must fail with a message
/// containing `needle`.
fn both_fail(q: &[usize], v: &[usize], k: Option<&[usize]>, opts: &CallOptions, needle: &str) {
    let (layer, cfg) = layer();
    let (q, v, k) = (t(q), t(v), k.map(t));
    let gpu = layer.forward(&q, &v, k.as_ref(), opts).unwrap_err();
    assert!(matches!(gpu, GpuError::Invalid(_)), "{gpu}");
    assert!(gpu.to_string().contains(needle), "GPU error {gpu:?} lacks {needle:?}");
    let w = random_weights(&cfg, LayerDims { query_dim: 6, key_dim: 6, value_dim: 6 }, 1);
    let cpu = gqa::reference::forward(&cfg, &w, &q, &v, k.as_ref(), opts).unwrap_err();
    assert!(cpu.to_string().contains(needle), "oracle error {cpu:?} lacks {needle:?}");
}

#[test]
fn wrong_ranks_and_shapes() {
    let o = CallOptions::default();
    both_fail(&[3, 6], &[1, 4, 6], None, &o, "query must have rank 3");
    both_fail(&[1, 3, 6], &[1, 4, 6, 1], None, &o, "value must have rank 3");
    both_fail(&[2, 3, 6], &[1, 4, 6], None, &o, "differ in batch");
    both_fail(&[1, 3, 6], &[1, 4, 6], Some(&[1, 5, 6]), &o, "key [1, 5, 6] must match value");
    both_fail(&[1, 0, 6], &[1, 4, 6], None, &o, "must be > 0");
}

#[test]
fn dims_that_disagree_with_the_weights() {
    let (layer, _) = layer();
    let err = layer.forward(&t(&[1, 3, 5]), &t(&[1, 4, 6]), None, &CallOptions::default()).unwrap_err();
    assert!(err.to_string().contains("query has last dim 5"), "{err}");
    let err = layer.forward(&t(&[1, 3, 6]), &t(&[1, 4, 6]), Some(&t(&[1, 4, 7])), &CallOptions::default()).unwrap_err();
    assert!(err.to_string().contains("key has last dim 7"), "{err}");
}

#[test]
fn masks_that_do_not_broadcast() {
    for (shape, name) in [
        (vec![2, 3, 4], "attention_mask"),
        (vec![3, 5], "attention_mask"),
        (vec![1, 3, 3, 4], "attention_mask"),
        (vec![4], "attention_mask"),
    ] {
        let o = CallOptions { attention_mask: Some(Mask::filled(shape.clone(), true)), ..Default::default() };
        both_fail(&[1, 3, 6], &[1, 4, 6], None, &o, name);
    }
    let o = CallOptions { query_mask: Some(Mask::filled(vec![1, 4], true)), ..Default::default() };
    both_fail(&[1, 3, 6], &[1, 4, 6], None, &o, "query_mask of shape [1, 4]");
    let o = CallOptions { value_mask: Some(Mask::filled(vec![1, 3], true)), ..Default::default() };
    both_fail(&[1, 3, 6], &[1, 4, 6], None, &o, "value_mask");
    let o = CallOptions { key_mask: Some(Mask::filled(vec![2, 4], true)), ..Default::default() };
    both_fail(&[1, 3, 6], &[1, 4, 6], None, &o, "key_mask");
}

#[test]
fn bad_configs_and_weights() {
    let ctx = &adapters()[0];
    let dims = LayerDims { query_dim: 6, key_dim: 6, value_dim: 6 };
    let good = GqaConfig::new(4, 4, 2);
    let w = random_weights(&good, dims, 1);
    let check = |cfg: &GqaConfig, needle: &str| {
        let err = GqaLayer::new(ctx, cfg, &w).unwrap_err();
        assert!(err.to_string().contains(needle), "{err:?} lacks {needle:?}");
    };
    let mut c = good.clone();
    c.num_key_value_heads = 3;
    check(&c, "divisible");
    c = good.clone();
    c.dropout = 1.0;
    check(&c, "dropout must be in [0, 1)");
    c.dropout = f64::NAN;
    check(&c, "dropout");
    c = good.clone();
    c.head_dim = 0;
    check(&c, "head_dim must be > 0");
    c = good.clone();
    c.sliding_window = Some(0);
    check(&c, "sliding_window");
    c = good.clone();
    c.use_gate = true;
    check(&c, "gate/kernel: expected shape [6, 4, 4], missing");
    c = good.clone();
    c.use_bias = false;
    check(&c, "query/bias");
    let mut bad = w.clone();
    bad.key.kernel = HostTensor::zeros([6, 2, 5]);
    let err = GqaLayer::new(ctx, &good, &bad).unwrap_err();
    assert!(err.to_string().contains("key/kernel: expected shape [6, 2, 4], got shape [6, 2, 5]"), "{err}");
}

#[test]
fn problems_beyond_device_limits_name_the_limit() {
    // 32 heads x 8192 x 8192 scores = 8 GiB: the attention is chunked to fit the bindings, but the
    // requested scores cannot fit one buffer. No allocation happens: the plan says so first.
    let ctx = &adapters()[0];
    let cfg = GqaConfig::new(4, 32, 8);
    let w = random_weights(&cfg, LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 }, 1);
    let layer = GqaLayer::new(ctx, &cfg, &w).unwrap();
    let plan = layer.plan(&[1, 8192, 8], &[1, 8192, 8], None, &CallOptions::default()).unwrap();
    assert!(plan.chunking.splits_attention(&plan.problem), "{:?}", plan.chunking);
    let scores = CallOptions { return_attention_scores: true, ..Default::default() };
    let err = layer.plan(&[1, 8192, 8], &[1, 8192, 8], None, &scores).unwrap_err();
    let GpuError::Invalid(GqaError::LimitExceeded { limit, needed, .. }) = &err else { panic!("{err:?}") };
    assert_eq!(*limit, "max_buffer_size", "{err}");
    assert_eq!(*needed, 32 * 8192 * 8192 * 4);
    assert!(err.to_string().contains("buffer Scores"), "{err}");
    // One batch element's value rows larger than a binding cannot be split further.
    let small = ctx
        .clone()
        .with_plan_limits(gqa::core::Limits { max_storage_buffer_binding_size: 1 << 16, ..Default::default() });
    let layer = GqaLayer::new(&small, &cfg, &w).unwrap();
    let err = layer.plan(&[1, 4, 8], &[1, 4096, 8], None, &CallOptions::default()).unwrap_err();
    assert!(err.to_string().contains("one batch element does not fit one binding"), "{err}");
}

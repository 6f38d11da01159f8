//! Property test: random configs, shapes (across the attention's 64-query and 256-key tiles),
//! masks and options give the oracle's output and scores on the CPU layer.

mod common;

use common::{check_forward, layer};
use gqa_core::{CallOptions, CausalAlignment, GqaConfig, HostTensor, LayerDims, Mask, MaskedRows};
use proptest::prelude::*;

fn mask(shape: Vec<usize>) -> impl Strategy<Value = Mask> {
    let n: usize = shape.iter().product();
    proptest::collection::vec(proptest::bool::weighted(0.75), n).prop_map(move |d| Mask::new(shape.clone(), d).unwrap())
}

fn values(shape: [usize; 3]) -> impl Strategy<Value = HostTensor> {
    proptest::collection::vec(-1.0f32..1.0, shape.iter().product::<usize>())
        .prop_map(move |d| HostTensor::new(shape, d).unwrap())
}

prop_compose! {
    fn config()(h in 1usize..20, nkv in 1usize..4, r in 1usize..6, bias in any::<bool>(), gate in any::<bool>(),
                window in proptest::option::weighted(0.3, 1usize..300), dropout in proptest::option::weighted(0.2, 0.05f64..0.5))
                -> GqaConfig {
        let mut c = GqaConfig::new(h, nkv * r, nkv);
        c.use_bias = bias;
        c.use_gate = gate;
        c.sliding_window = window;
        c.dropout = dropout.unwrap_or(0.0);
        c
    }
}

/// A layer, its inputs and the call's options.
#[derive(Debug)]
struct Case {
    config: GqaConfig,
    dims: LayerDims,
    query: HostTensor,
    value: HostTensor,
    key: Option<HostTensor>,
    options: CallOptions,
}

fn case() -> impl Strategy<Value = Case> {
    (config(), 1usize..3, 1usize..140, 1usize..600, 1usize..24, 1usize..24, proptest::option::of(1usize..24))
        .prop_flat_map(|(config, b, t, s, dq, dv, dk)| {
            let nq = config.num_query_heads;
            let attention_shapes =
                prop_oneof![Just(vec![b, t, s]), Just(vec![t, s]), Just(vec![1, t, s]), Just(vec![b, nq, t, s])];
            (
                Just((config, dq, dv, dk)),
                values([b, t, dq]),
                values([b, s, dv]),
                dk.map_or(Just(None).boxed(), |dk| values([b, s, dk]).prop_map(Some).boxed()),
                proptest::option::weighted(0.4, attention_shapes.prop_flat_map(mask)),
                proptest::option::weighted(0.3, mask(vec![b, t])),
                proptest::option::weighted(0.3, mask(vec![b, s])),
                (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<u64>()),
            )
        })
        .prop_map(|((config, dq, dv, dk), query, value, key, am, qm, vm, flags)| {
            let (causal, bottom_right, scores, keras_rows, training, seed) = flags;
            let options = CallOptions {
                attention_mask: am,
                query_mask: qm,
                value_mask: vm,
                use_causal_mask: causal,
                causal_alignment: if bottom_right { CausalAlignment::BottomRight } else { CausalAlignment::TopLeft },
                return_attention_scores: scores,
                masked_rows: if keras_rows { MaskedRows::KerasDefault } else { MaskedRows::Zeros },
                training,
                dropout_seed: Some(seed),
                ..Default::default()
            };
            let dims = LayerDims { query_dim: dq, key_dim: dk.unwrap_or(dv), value_dim: dv };
            Case { config, dims, query, value, key, options }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_calls_match_the_oracle(c in case()) {
        let l = layer(c.config.clone(), c.dims, 5);
        let what = format!(
            "B={} T={} S={} {:?} H={} Nq={} Nkv={} window={:?} dropout={} options={:?}",
            c.query.shape()[0], c.query.shape()[1], c.value.shape()[1], c.dims, c.config.head_dim,
            c.config.num_query_heads, c.config.num_key_value_heads, c.config.sliding_window, c.config.dropout,
            (c.options.use_causal_mask, c.options.causal_alignment, c.options.masked_rows, c.options.training)
        );
        check_forward(&l, &c.query, &c.value, c.key.as_ref(), &c.options, &what);
    }
}

//! Property test: random small configs, shapes, masks and options give the oracle's output and
//! scores on every adapter.

mod common;

use common::{Case, adapters};
use gqa::core::{CausalAlignment, GqaConfig, Mask, MaskedRows};
use proptest::prelude::*;

fn mask(shape: Vec<usize>) -> impl Strategy<Value = Mask> {
    let n: usize = shape.iter().product();
    proptest::collection::vec(proptest::bool::weighted(0.75), n).prop_map(move |d| Mask::new(shape.clone(), d).unwrap())
}

prop_compose! {
    fn config()(h in 1usize..12, nkv in 1usize..4, r in 1usize..5, bias in any::<bool>(), gate in any::<bool>(),
                window in proptest::option::weighted(0.3, 1usize..6)) -> GqaConfig {
        let mut c = GqaConfig::new(h, nkv * r, nkv);
        c.use_bias = bias;
        c.use_gate = gate;
        c.sliding_window = window;
        c
    }
}

fn case() -> impl Strategy<Value = Case> {
    (config(), 1usize..3, 1usize..20, 1usize..20, 1usize..14, 1usize..14, proptest::option::of(1usize..14))
        .prop_flat_map(|(cfg, b, t, s, dq, dv, dk)| {
            let nq = cfg.num_query_heads;
            let attention_shapes =
                prop_oneof![Just(vec![b, t, s]), Just(vec![t, s]), Just(vec![1, t, s]), Just(vec![b, nq, t, s])];
            (
                Just((cfg, b, t, s, dq, dv, dk)),
                proptest::option::weighted(0.4, attention_shapes.prop_flat_map(mask)),
                proptest::option::weighted(0.3, mask(vec![b, t])),
                proptest::option::weighted(0.3, mask(vec![b, s])),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|((cfg, b, t, s, dq, dv, dk), am, qm, vm, causal, bottom_right, scores, keras_rows)| {
            let mut c = Case::new("proptest", cfg);
            (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (b, t, s, dq, dv, dk);
            c.options.attention_mask = am;
            c.options.query_mask = qm;
            c.options.value_mask = vm;
            c.options.use_causal_mask = causal;
            c.options.causal_alignment =
                if bottom_right { CausalAlignment::BottomRight } else { CausalAlignment::TopLeft };
            c.options.return_attention_scores = scores;
            c.options.masked_rows = if keras_rows { MaskedRows::KerasDefault } else { MaskedRows::Zeros };
            c.name = format!(
                "proptest B={b} T={t} S={s} Dq={dq} Dv={dv} Dk={dk:?} H={} Nq={} Nkv={} bias={} gate={} window={:?} \
                 causal={causal} br={bottom_right} am={:?} qm={} vm={} rows={:?}",
                c.config.head_dim,
                c.config.num_query_heads,
                c.config.num_key_value_heads,
                c.config.use_bias,
                c.config.use_gate,
                c.config.sliding_window,
                c.options.attention_mask.as_ref().map(|m| m.shape().to_vec()),
                c.options.query_mask.is_some(),
                c.options.value_mask.is_some(),
                c.options.masked_rows,
            );
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn gpu_matches_oracle_on_random_configs(case in case(), seed in 0u64..1000) {
        for ctx in adapters() {
            case.check(ctx, seed);
        }
    }
}

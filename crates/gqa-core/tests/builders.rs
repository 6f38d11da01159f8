//! The `with_*` builders of `GqaConfig` and `CallOptions` set exactly the field they name.

use gqa_core::{CallOptions, CausalAlignment, Constraint, GqaConfig, Initializer, Mask, MaskedRows, Regularizer};

#[test]
fn config_builders_set_each_argument() {
    let built = GqaConfig::new(8, 4, 2)
        .with_name("attn")
        .with_trainable(false)
        .with_dtype("mixed_float16")
        .with_bias(false)
        .with_gate(true)
        .with_sliding_window(16)
        .with_dropout(0.25)
        .with_kernel_initializer(Initializer::HeNormal { seed: Some(3) })
        .with_bias_initializer(Initializer::Ones)
        .with_kernel_regularizer(Regularizer::L2 { l2: 0.5 })
        .with_bias_regularizer(Regularizer::L1 { l1: 0.25 })
        .with_activity_regularizer(Regularizer::L2 { l2: 0.125 })
        .with_kernel_constraint(Constraint::NonNeg)
        .with_bias_constraint(Constraint::UnitNorm { axis: vec![0] })
        .with_seed(11);
    let literal = GqaConfig {
        name: "attn".into(),
        trainable: false,
        dtype: "mixed_float16".into(),
        use_bias: false,
        use_gate: true,
        sliding_window: Some(16),
        dropout: 0.25,
        kernel_initializer: Initializer::HeNormal { seed: Some(3) },
        bias_initializer: Initializer::Ones,
        kernel_regularizer: Some(Regularizer::L2 { l2: 0.5 }),
        bias_regularizer: Some(Regularizer::L1 { l1: 0.25 }),
        activity_regularizer: Some(Regularizer::L2 { l2: 0.125 }),
        kernel_constraint: Some(Constraint::NonNeg),
        bias_constraint: Some(Constraint::UnitNorm { axis: vec![0] }),
        seed: Some(11),
        ..GqaConfig::new(8, 4, 2)
    };
    assert_eq!(built, literal);
    // `None` clears what a builder set.
    let cleared = built
        .with_sliding_window(None)
        .with_seed(None)
        .with_kernel_regularizer(None)
        .with_bias_regularizer(None)
        .with_activity_regularizer(None)
        .with_kernel_constraint(None)
        .with_bias_constraint(None);
    assert_eq!((cleared.sliding_window, cleared.seed), (None, None));
    assert!(cleared.kernel_regularizer.is_none() && cleared.bias_regularizer.is_none());
    assert!(cleared.activity_regularizer.is_none() && cleared.kernel_constraint.is_none());
    assert!(cleared.bias_constraint.is_none());
}

#[test]
fn call_options_builders_set_each_field() {
    let mask = |n| Mask::filled([2, n], true);
    let built = CallOptions::default()
        .with_attention_mask(Mask::filled([3, 4], false))
        .with_query_mask(mask(3))
        .with_value_mask(mask(4))
        .with_key_mask(mask(4))
        .with_causal_mask(true)
        .with_causal_alignment(CausalAlignment::BottomRight)
        .with_attention_scores(true)
        .with_training(true)
        .with_masked_rows(MaskedRows::KerasDefault)
        .with_dropout_seed(5);
    let literal = CallOptions {
        attention_mask: Some(Mask::filled([3, 4], false)),
        query_mask: Some(mask(3)),
        value_mask: Some(mask(4)),
        key_mask: Some(mask(4)),
        use_causal_mask: true,
        causal_alignment: CausalAlignment::BottomRight,
        return_attention_scores: true,
        training: true,
        masked_rows: MaskedRows::KerasDefault,
        dropout_seed: Some(5),
    };
    assert_eq!(built, literal);
    let off = built.with_causal_mask(false).with_training(false);
    assert!(!off.use_causal_mask && !off.training && off.return_attention_scores);
}

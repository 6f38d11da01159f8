mod common;
use common::*;
use gqa::core::GqaConfig;

#[test]
fn smoke() {
    for ctx in adapters() {
        let mut c = Case::new("smoke", GqaConfig::new(8, 4, 2));
        c.options.return_attention_scores = true;
        let d = c.check(ctx, 1);
        eprintln!("{} max diff {d}", adapter_name(ctx));
    }
}

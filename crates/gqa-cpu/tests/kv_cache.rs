//! The CPU layer's KV cache against the oracle's: ragged prompts, windows, chunked prefill, steps
//! of one and several tokens over short and long prefixes, in lockstep; read and load between
//! implementations; every misuse an error.

mod common;

use common::{check_tensor, layer, tensor};
use gqa_core::{AttentionLayer, CacheContents, CallOptions, GqaConfig, GqaError, HostTensor, LayerDims};
use gqa_ref::ReferenceLayer;
use rand::{SeedableRng, rngs::StdRng};

fn pair(config: GqaConfig, d: usize, seed: u64) -> (gqa_cpu::CpuLayer, ReferenceLayer) {
    let cpu = layer(config, LayerDims { query_dim: d, key_dim: d, value_dim: d }, seed);
    let oracle = ReferenceLayer::new(cpu.config().clone(), cpu.weights().clone()).unwrap();
    (cpu, oracle)
}

#[test]
fn prefill_chunks_and_steps_in_lockstep_with_the_oracle() {
    for (window, gate) in [(None, false), (Some(5), true), (Some(300), false)] {
        let config = GqaConfig { sliding_window: window, use_gate: gate, ..GqaConfig::new(16, 8, 2) };
        let (cpu, oracle) = pair(config, 32, 3);
        let mut rng = StdRng::seed_from_u64(4);
        let x = tensor([2, 700, 32], &mut rng);
        let mut c = cpu.new_cache(2, 720).unwrap();
        let mut o = oracle.new_cache(2, 720).unwrap();
        // A prompt, a chunk, then steps of 1 and 3 tokens.
        let mut at = 0;
        for (i, n) in [300usize, 290, 1, 1, 3, 1, 3, 1].into_iter().enumerate() {
            let part = x.time_slice(at..at + n).unwrap();
            let (got, want) = if i < 2 {
                (
                    cpu.prefill(&mut c, &part, &part, None, None).unwrap(),
                    oracle.prefill(&mut o, &part, &part, None, None).unwrap(),
                )
            } else {
                (cpu.step(&mut c, &part, &part, None).unwrap(), oracle.step(&mut o, &part, &part, None).unwrap())
            };
            check_tensor(&got, &want, &format!("window {window:?}: call {i} at {at} of {n}"));
            at += n;
            assert_eq!(c.lengths(), o.lengths());
        }
        // The steps equal the rows of one causal call over the whole sequence.
        let whole = cpu
            .forward(
                &x.time_slice(..at).unwrap(),
                &x.time_slice(..at).unwrap(),
                None,
                &CallOptions::default().with_causal_mask(true),
            )
            .unwrap();
        let last = x.time_slice(at - 1..at).unwrap();
        c.truncate(at - 1).unwrap();
        let again = cpu.step(&mut c, &last, &last, None).unwrap();
        check_tensor(&again, &whole.output.time_slice(at - 1..at).unwrap(), "the last row of one causal call");
    }
}

#[test]
fn ragged_prompts_and_steps() {
    let config = GqaConfig { sliding_window: Some(4), ..GqaConfig::new(8, 4, 1) };
    let (cpu, oracle) = pair(config, 16, 5);
    let mut rng = StdRng::seed_from_u64(6);
    let prompt = tensor([3, 9, 16], &mut rng);
    let lengths = [9, 2, 6];
    let mut c = cpu.new_cache(3, 20).unwrap();
    let mut o = oracle.new_cache(3, 20).unwrap();
    let got = cpu.prefill(&mut c, &prompt, &prompt, None, Some(&lengths)).unwrap();
    let want = oracle.prefill(&mut o, &prompt, &prompt, None, Some(&lengths)).unwrap();
    check_tensor(&got, &want, "ragged prefill");
    assert_eq!(c.lengths(), lengths);
    for i in 0..4 {
        let token = tensor([3, 2, 16], &mut rng);
        let key = tensor([3, 2, 16], &mut rng);
        let got = cpu.step(&mut c, &token, &token, Some(&key)).unwrap();
        let want = oracle.step(&mut o, &token, &token, Some(&key)).unwrap();
        check_tensor(&got, &want, &format!("ragged step {i}"));
    }
    // Grown, then rolled back per sequence: the same contents, then the same next step.
    c.grow(40).unwrap();
    assert_eq!((c.capacity(), c.batch(), c.is_empty()), (40, 3, false));
    assert!(c.grow(16).is_err() && c.truncate_each(&[1, 2]).is_err() && c.truncate_each(&[18, 1, 1]).is_err());
    let (a, b) = (cpu.read_cache(&c).unwrap(), oracle.read_cache(&o).unwrap());
    check_tensor(&a.keys, &b.keys, "keys read");
    check_tensor(&a.values, &b.values, "values read");
    assert_eq!(a.lengths, [17, 10, 14]);
    c.truncate_each(&[17, 9, 14]).unwrap();
    let mut o2 = oracle.new_cache(3, 40).unwrap();
    let mut rolled = b.clone();
    rolled.lengths = vec![17, 9, 14];
    oracle.load_cache(&mut o2, &rolled).unwrap();
    let token = tensor([3, 1, 16], &mut rng);
    let got = cpu.step(&mut c, &token, &token, None).unwrap();
    let want = oracle.step(&mut o2, &token, &token, None).unwrap();
    check_tensor(&got, &want, "a step after grow and truncate_each");
    c.reset();
    assert!(c.is_empty());
}

#[test]
fn long_prefix_steps_and_moves_between_implementations() {
    let (cpu, oracle) = pair(GqaConfig::new(128, 32, 8), 256, 7);
    let mut rng = StdRng::seed_from_u64(8);
    // 8,191 cached tokens, loaded into both caches (as a saved cache would be).
    let (held, nkv, h) = (8191, 8, 128);
    let random = |rng: &mut StdRng| {
        let flat = tensor([1, held * nkv, h], rng);
        HostTensor::new([1, held, nkv, h], flat.into_data()).unwrap()
    };
    let contents = CacheContents { keys: random(&mut rng), values: random(&mut rng), lengths: vec![held] };
    let mut o = oracle.new_cache(1, 8300).unwrap();
    let mut c = cpu.new_cache(1, 8300).unwrap();
    oracle.load_cache(&mut o, &contents).unwrap();
    cpu.load_cache(&mut c, &contents).unwrap();
    assert_eq!(cpu.read_cache(&c).unwrap(), contents);
    for n in [1, 16] {
        let x = tensor([1, n, 256], &mut rng);
        let got = cpu.step(&mut c, &x, &x, None).unwrap();
        let want = oracle.step(&mut o, &x, &x, None).unwrap();
        check_tensor(&got, &want, &format!("step of {n} over {} keys", c.lengths()[0] - n));
    }
}

#[test]
fn misuse_is_an_error() {
    let (cpu, _) = pair(GqaConfig::new(8, 4, 2), 16, 1);
    let mut c = cpu.new_cache(2, 4).unwrap();
    let x = HostTensor::zeros([2, 1, 16]);
    assert!(matches!(cpu.step(&mut c, &x, &x, None), Err(GqaError::CacheEmpty { sequence: 0, .. })));
    let five = HostTensor::zeros([2, 5, 16]);
    assert!(matches!(cpu.prefill(&mut c, &five, &five, None, None), Err(GqaError::CacheFull { .. })));
    let one = HostTensor::zeros([1, 2, 16]);
    assert!(matches!(cpu.prefill(&mut c, &one, &one, None, None), Err(GqaError::CacheMismatch { .. })));
    let wrong_dim = HostTensor::zeros([2, 2, 15]);
    assert!(cpu.prefill(&mut c, &wrong_dim, &wrong_dim, None, None).is_err());
    let flat = HostTensor::zeros([2, 16]);
    assert!(matches!(cpu.prefill(&mut c, &flat, &flat, None, None), Err(GqaError::Rank { .. })));
    assert!(cpu.new_cache(0, 4).is_err() && cpu.new_cache(1, 0).is_err());
    assert_eq!(c.lengths(), [0, 0], "a refused call appends nothing");
}

/// A ring cache (window 6, with and without kept first tokens), over a sequence several times its
/// capacity: every call equals the oracle's ring, and all of them together equal one causal call
/// over the whole sequence under the window (and the sinks).
#[test]
fn ring_caches_equal_one_windowed_call_over_the_whole_sequence() {
    let window = 6;
    for (keep_first, chunk) in [(0, 1), (3, 4)] {
        let config = GqaConfig { sliding_window: Some(window), ..GqaConfig::new(8, 4, 2) };
        let (cpu, oracle) = pair(config.clone(), 16, 11);
        let mut rng = StdRng::seed_from_u64(12);
        let total = 61;
        let x = tensor([2, total, 16], &mut rng);
        let mut c = gqa_cpu::KvCache::new_ring(&config, 2, chunk, keep_first).unwrap();
        let mut o = gqa_ref::KvCache::new_ring(&config, 2, chunk, keep_first).unwrap();
        assert_eq!(c.capacity(), keep_first + window + chunk - 1);
        let mut outputs = Vec::new();
        let mut at = 0;
        for i in 0.. {
            let n = if i % 2 == 0 { chunk } else { 1 }.min(total - at);
            if n == 0 {
                break;
            }
            let part = x.time_slice(at..at + n).unwrap();
            let got = if i == 0 {
                cpu.prefill(&mut c, &part, &part, None, None)
            } else {
                cpu.step(&mut c, &part, &part, None)
            };
            let got = got.unwrap();
            let want = if i == 0 {
                o.prefill(oracle.config(), &oracle.weights, &part, &part, None, None)
            } else {
                o.step(oracle.config(), &oracle.weights, &part, &part, None)
            };
            check_tensor(&got, &want.unwrap(), &format!("keep_first {keep_first}: call {i} at {at}"));
            outputs.push(got);
            at += n;
        }
        assert_eq!(c.lengths(), [total, total]);
        // The ring holds its kept first tokens and the last capacity - keep_first.
        let read = c.read().unwrap();
        assert_eq!(read.lengths, [c.capacity(), c.capacity()]);

        // One call over the whole sequence: causal with the window, and the sinks through a mask.
        let whole = if keep_first == 0 {
            oracle.forward(&x, &x, None, &CallOptions::default().with_causal_mask(true)).unwrap()
        } else {
            let plain =
                ReferenceLayer::new(GqaConfig { sliding_window: None, ..config.clone() }, oracle.weights.clone())
                    .unwrap();
            let visible =
                (0..total).flat_map(|q| (0..total).map(move |p| p <= q && (q - p < window || p < keep_first)));
            let mask = gqa_core::Mask::new([total, total], visible.collect()).unwrap();
            plain.forward(&x, &x, None, &CallOptions::default().with_attention_mask(mask)).unwrap()
        };
        let joined = HostTensor::concat(&outputs, 1).unwrap();
        check_tensor(&joined, &whole.output, &format!("keep_first {keep_first}: every call against one whole call"));

        // Misuse: more tokens than the chunk, a roll-back past the window, growing.
        let too_many = x.time_slice(0..chunk + 1).unwrap();
        assert!(matches!(cpu.step(&mut c, &too_many, &too_many, None), Err(GqaError::CacheWindow { .. })));
        assert!(matches!(c.truncate(total - chunk - 1), Err(GqaError::CacheWindow { .. })));
        assert!(c.truncate(total - chunk).is_ok());
        assert!(matches!(c.grow(100), Err(GqaError::CacheWindow { .. })));
    }
}

//! The schedules of cached calls the KV-cache tests run over each storage and precision: a layer, a
//! batch, the tokens of each call (the first a prefill) and the cache's layout.

use gqa::core::{CacheShape, CacheStorage, GqaConfig, LayerDims};

/// One schedule: a layer, a cache layout and the calls appended to it.
pub struct Schedule {
    pub name: &'static str,
    pub config: GqaConfig,
    pub dims: LayerDims,
    pub batch: usize,
    /// Tokens appended per call, the first a prefill.
    pub calls: Vec<usize>,
    /// A ring (chunk, keep_first), or a linear cache of the calls' tokens and 5 spare.
    pub ring: Option<(usize, usize)>,
}

impl Schedule {
    /// The cache's shape in `storage`.
    pub fn shape(&self, storage: CacheStorage) -> CacheShape {
        let total: usize = self.calls.iter().sum();
        let shape = match self.ring {
            Some((chunk, keep)) => CacheShape::ring(&self.config, self.batch, chunk, keep).unwrap(),
            None => CacheShape::new(&self.config, self.batch, total + 5).unwrap(),
        };
        shape.with_storage(storage).unwrap()
    }

    /// Tokens of all the calls.
    pub fn total(&self) -> usize {
        self.calls.iter().sum()
    }
}

/// GQA with batch 2 and steps of 1 and 3; MQA with a gate and no bias; 600 cached keys over several
/// splits; a ring of window 6 with 2 sinks fed in chunks of 3 over 4 times its size.
pub fn schedules() -> Vec<Schedule> {
    let dims = |dq, dv| LayerDims { query_dim: dq, key_dim: dv, value_dim: dv };
    vec![
        Schedule {
            name: "GQA R=2, batch 2, steps of 1 and 3",
            config: GqaConfig::new(8, 4, 2),
            dims: dims(12, 10),
            batch: 2,
            calls: vec![7, 1, 1, 3, 1],
            ring: None,
        },
        Schedule {
            name: "MQA, gate, no bias, H=16",
            config: GqaConfig { use_bias: false, use_gate: true, ..GqaConfig::new(16, 4, 1) },
            dims: dims(16, 16),
            batch: 1,
            calls: vec![5, 1, 2, 1],
            ring: None,
        },
        Schedule {
            name: "long: 600 cached keys over several splits",
            config: GqaConfig::new(4, 8, 2),
            dims: dims(8, 8),
            batch: 1,
            calls: vec![300, 300, 1, 1, 4],
            ring: None,
        },
        Schedule {
            name: "ring, window 6, 2 sinks, chunks of 3",
            config: GqaConfig { sliding_window: Some(6), ..GqaConfig::new(8, 4, 2) },
            dims: dims(12, 12),
            batch: 2,
            calls: vec![3, 1, 3, 1, 1, 3, 1, 1, 1, 3, 1, 1],
            ring: Some((3, 2)),
        },
    ]
}

//! The packed mask buffer: every mask part of a call as bits in u32 words, and where each part
//! starts.

use crate::problem::Problem;
use crate::tensor::Mask;

/// Bit offsets of each mask part inside the packed mask buffer (bit `i` is bit `i % 32` of word
/// `i / 32`; 1 = attend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaskOffsets {
    /// Attention mask (its own shape, row-major).
    pub attention: usize,
    /// Query mask (B, T).
    pub query: usize,
    /// Value mask (B, S).
    pub value: usize,
    /// Key mask (B, S).
    pub key: usize,
    /// Total bits.
    pub bits: usize,
}

impl MaskOffsets {
    /// The layout for a problem: attention, query, value, key, each present part in turn.
    pub fn of(problem: &Problem) -> Self {
        let m = &problem.mask;
        let attention = 0;
        let query = attention + m.attention_elems;
        let value = query + if m.query { problem.batch * problem.target_len } else { 0 };
        let key = value + if m.value { problem.batch * problem.source_len } else { 0 };
        let bits = key + if m.key { problem.batch * problem.source_len } else { 0 };
        Self { attention, query, value, key, bits }
    }

    /// u32 words of the packed buffer (at least 1, so it can be bound).
    pub fn words(&self) -> usize {
        self.bits.div_ceil(32).max(1)
    }
}

/// The mask bits of `problem` (1 = attend) at the bit offsets of [`MaskOffsets::of`], packed 32 to
/// a word: what [`BufferId::Masks`](super::BufferId::Masks) holds.
pub(crate) fn pack(problem: &Problem) -> Vec<u32> {
    let offsets = MaskOffsets::of(problem);
    let mut words = vec![0u32; offsets.words()];
    let mut put = |mask: Option<&Mask>, at: usize| {
        if let Some(m) = mask {
            for (i, &v) in m.data().iter().enumerate() {
                words[(at + i) / 32] |= (v as u32) << ((at + i) % 32);
            }
        }
    };
    let values = &problem.mask_values;
    put(values.attention.as_ref(), offsets.attention);
    put(values.query.as_ref(), offsets.query);
    put(values.value.as_ref(), offsets.value);
    put(values.key.as_ref(), offsets.key);
    words
}

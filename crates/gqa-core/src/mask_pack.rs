//! Packing a call's masks into the one u32 buffer the kernels read.

use crate::options::CallOptions;
use crate::plan::MaskOffsets;
use crate::problem::Problem;
use crate::tensor::Mask;

/// The mask bits (1 = attend) at the bit offsets of [`MaskOffsets::of`], packed 32 to a word;
/// `options` must be the ones the problem was built from.
pub fn pack_masks(problem: &Problem, options: &CallOptions) -> Vec<u32> {
    let offsets = MaskOffsets::of(problem);
    let mut words = vec![0u32; offsets.words()];
    let mut put = |mask: Option<&Mask>, at: usize| {
        if let Some(m) = mask {
            for (i, &v) in m.data().iter().enumerate() {
                words[(at + i) / 32] |= (v as u32) << ((at + i) % 32);
            }
        }
    };
    put(options.attention_mask.as_ref(), offsets.attention);
    put(options.query_mask.as_ref(), offsets.query);
    put(options.value_mask.as_ref(), offsets.value);
    put(options.key_mask.as_ref(), offsets.key);
    words
}

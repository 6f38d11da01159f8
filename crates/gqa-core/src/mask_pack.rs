//! Packing a call's masks into the one u32 buffer the kernels read.

use crate::options::CallOptions;
use crate::plan::MaskOffsets;
use crate::problem::Problem;
use crate::tensor::Mask;

/// The packed mask words (1 = attend) at the offsets of [`MaskOffsets::of`]; `options` must be the
/// ones the problem was built from.
pub fn pack_masks(problem: &Problem, options: &CallOptions) -> Vec<u32> {
    let offsets = MaskOffsets::of(problem);
    let mut words = vec![0u32; offsets.total];
    let mut put = |mask: Option<&Mask>, at: usize| {
        if let Some(m) = mask {
            for (w, &v) in words[at..at + m.data().len()].iter_mut().zip(m.data()) {
                *w = v as u32;
            }
        }
    };
    put(options.attention_mask.as_ref(), offsets.attention);
    put(options.query_mask.as_ref(), offsets.query);
    put(options.value_mask.as_ref(), offsets.value);
    put(options.key_mask.as_ref(), offsets.key);
    words
}

// The words Kernel::CheckValues wrote for the block attention (binding 7): all 0 when no projected
// value is NaN or infinite, so that the scan of the keys outside keys_seen, which only looks for
// those, may be skipped (where fully masked rows give zeros). The plan writes them only where they
// matter (a causal or window skip under the zeros policy); elsewhere the scan's ranges are empty or
// Keras' policy makes the kernels scan anyway, whatever the words hold.
@group(0) @binding(7) var<storage, read> v_flags: array<u32>;

fn values_all_finite() -> bool {
    var any_bad = 0u;
    for (var i = 0u; i < arrayLength(&v_flags); i++) {
        any_bad |= v_flags[i];
    }
    return any_bad == 0u;
}

// Combining the lanes' key groups (attention_decode; attention_block has its own, finish8, through
// its scores array `sc`): for the P·V phase the lanes own vec4 column `col` of H / 4 within key group
// `kg` of `kgroups` = 64 / (H / 4), and each sums its keys' contributions to 4 items' outputs and to
// the V sum.

// The key groups' partial sums: 5 vec4 per (key group, column).
var<workgroup> part: array<vec4<f32>, 320>;

// One lane's sums for one vec4 column: 4 items' outputs and the sum of V.
struct Sums4 {
    s0: vec4<f32>,
    s1: vec4<f32>,
    s2: vec4<f32>,
    s3: vec4<f32>,
    vs: vec4<f32>,
}

// The sums over every key group, valid in key group 0's lanes. Called in uniform control flow (it
// has barriers when there is more than one key group).
fn combine_key_groups(x: Sums4, kg: u32, kgroups: u32, col: u32, h4n: u32) -> Sums4 {
    var s = x;
    if kgroups > 1u {
        if kg < kgroups {
            let at = (kg * h4n + col) * 5u;
            part[at] = x.s0;
            part[at + 1u] = x.s1;
            part[at + 2u] = x.s2;
            part[at + 3u] = x.s3;
            part[at + 4u] = x.vs;
        }
        workgroupBarrier();
        if kg == 0u {
            for (var k = 1u; k < kgroups; k++) {
                let at = (k * h4n + col) * 5u;
                s.s0 += part[at];
                s.s1 += part[at + 1u];
                s.s2 += part[at + 2u];
                s.s3 += part[at + 3u];
                s.vs += part[at + 4u];
            }
        }
        workgroupBarrier();
    }
    return s;
}

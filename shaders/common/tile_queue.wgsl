// The tile queue of the kernels that take their tiles from it (`Kernel::uses_tile_queue`): each
// workgroup takes the next tile of the dispatch's grid until none is left, instead of running the
// tile of its own workgroup id. A driver that splits a dispatch's workgroups between its threads in
// fixed shares (Mesa's llvmpipe gives each thread a contiguous 1 / threads of them) then keeps
// every thread busy to the end even when one runs slower: the first workgroup of each share runs
// tiles until the queue is empty, and the rest find it empty. On a GPU it costs an atomic per tile.
//
// A workgroup takes at most params.tile_quota tiles, then ends: Mesa's llvmpipe silently ends any
// loop of an invocation after 65,535 iterations in all, so a workgroup that ran every tile of a
// large grid would leave its last tiles unwritten. The plan sets the quota from the kernel's loop
// count per tile (Kernel::tile_quota); the dispatch has one workgroup per tile, and every
// workgroup takes at least one, so the tiles a workgroup leaves are taken by the next ones.
//
// The kernel declares `tile_queue` (array<atomic<u32>>); its pass's counter is word
// params.tile_slot, which the executor zeroes before the passes run.

var<workgroup> tile_queue_next: u32;

// The next tile for this workgroup, the same on every invocation (call it from uniform control
// flow): `grid.x * grid.y * grid.z` or more once none is left.
fn tile_queue_take(lid: u32) -> u32 {
    // Every invocation has read the previous tile before invocation 0 replaces it.
    workgroupBarrier();
    if lid == 0u {
        tile_queue_next = atomicAdd(&tile_queue[params.tile_slot], 1u);
    }
    return workgroupUniformLoad(&tile_queue_next);
}

// Tile `t` of a grid of `grid` workgroups as a workgroup id (x fastest).
fn tile_queue_id(t: u32, grid: vec3<u32>) -> vec3<u32> {
    return vec3<u32>(t % grid.x, (t / grid.x) % grid.y, t / (grid.x * grid.y));
}

//! The buffer pool of a context: buffers kept between calls so that repeated calls of the same
//! shapes create no new buffers.
//!
//! Two kinds of entries, both bounded by one byte budget:
//!
//! - **free buffers**, keyed by (class, usage, size). Reuse is safe without waiting for the GPU
//!   because a queue runs submissions one after the other:
//!   - [`Class::Gpu`] buffers are written only by GPU commands, and every call writes them before
//!     reading them (scratch, host-call outputs, readback staging). A call may give them back as
//!     soon as its commands are recorded, even into an encoder submitted much later.
//!   - [`Class::Host`] buffers are written by `queue.write_buffer` (host-call inputs). A call gives
//!     them back only after submitting the work that reads them. They are never lent as
//!     [`Class::Gpu`] buffers: the queue performs a pending write at the start of the *next* submit,
//!     whoever makes it, and a GPU buffer may be in an encoder submitted at any time.
//! - **constants**, keyed by their contents: the params uniform and the packed masks. They are
//!   written once, never rewritten, and shared by any number of calls (even ones recorded into an
//!   encoder that is submitted much later).
//!
//! When the entries exceed the budget (in bytes, or in number of buffers), the least recently used
//! are dropped first (wgpu frees a dropped buffer once no submitted work uses it). A buffer larger
//! than the whole byte budget is never kept. Buffers in use by a call do not count against the
//! budget.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::upload::upload;

/// The default byte budget of a context's pool: 256 MiB of idle buffers.
pub const DEFAULT_POOL_BUDGET: u64 = 256 << 20;

/// The default most idle buffers a context's pool keeps: enough for the buffers of about ten
/// different call shapes (a host call uses about a dozen).
pub const DEFAULT_POOL_MAX_BUFFERS: usize = 128;

/// What a context's buffer pool holds and has done (see [`crate::GpuContext::pool_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Idle buffers waiting to be reused.
    pub free_buffers: usize,
    /// Their bytes.
    pub free_bytes: u64,
    /// Cached constant buffers (params uniforms, packed masks).
    pub constant_buffers: usize,
    /// Their bytes.
    pub constant_bytes: u64,
    /// The most bytes the pool keeps (free and constant together).
    pub budget: u64,
    /// The most buffers the pool keeps (free and constant together).
    pub max_buffers: usize,
    /// Buffers the pool has created since the context was made.
    pub created: u64,
    /// Requests served by an existing buffer.
    pub reused: u64,
    /// Buffers dropped to stay within the budget.
    pub evicted: u64,
}

/// Who writes a pooled buffer, which decides when it may be given back (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Written by GPU commands only, before any read.
    Gpu,
    /// Written from the host through the queue.
    Host,
}

/// A kept buffer.
struct Entry {
    buffer: wgpu::Buffer,
    class: Class,
    /// `Some((hash, contents))` for a constant.
    constant: Option<(u64, Vec<u8>)>,
    /// When it was last given back or used: eviction drops the smallest first.
    stamp: u64,
}

struct State {
    entries: Vec<Entry>,
    clock: u64,
    stats: PoolStats,
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn kept_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.buffer.size()).sum()
    }

    /// Drops the least recently used entries until the pool fits its budget.
    fn evict(&mut self) {
        let mut kept = self.kept_bytes();
        while kept > self.stats.budget || self.entries.len() > self.stats.max_buffers {
            let Some(oldest) = self.entries.iter().enumerate().min_by_key(|(_, e)| e.stamp).map(|(i, _)| i) else {
                break;
            };
            let gone = self.entries.swap_remove(oldest);
            kept -= gone.buffer.size();
            self.stats.evicted += 1;
        }
    }
}

/// The pool (one per context, shared by its clones and by every layer made on it).
pub(crate) struct BufferPool {
    state: Mutex<State>,
}

/// The size a pooled buffer of `bytes` gets: at least 4 bytes (so it can be bound), a multiple of 4.
pub(crate) fn pooled_size(bytes: u64) -> u64 {
    bytes.max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
}

impl BufferPool {
    pub(crate) fn new(budget: u64, max_buffers: usize) -> Self {
        let stats = PoolStats { budget, max_buffers, ..PoolStats::default() };
        Self { state: Mutex::new(State { entries: Vec::new(), clock: 0, stats }) }
    }

    /// The state; a panic while it was held cannot leave it inconsistent, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer of `class`, exactly `usage` and [`pooled_size`]`(bytes)`: an idle one, or a new one.
    pub(crate) fn take(
        &self,
        device: &wgpu::Device,
        class: Class,
        usage: wgpu::BufferUsages,
        bytes: u64,
        label: &str,
    ) -> wgpu::Buffer {
        let size = pooled_size(bytes);
        {
            let mut s = self.lock();
            let found = s.entries.iter().position(|e| {
                e.constant.is_none() && e.class == class && e.buffer.usage() == usage && e.buffer.size() == size
            });
            if let Some(i) = found {
                s.stats.reused += 1;
                return s.entries.swap_remove(i).buffer;
            }
            s.stats.created += 1;
        }
        device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false })
    }

    /// Gives a buffer taken with [`BufferPool::take`] back for reuse, under the rules of its
    /// `class` (see the module docs).
    pub(crate) fn give(&self, class: Class, buffer: wgpu::Buffer) {
        let mut s = self.lock();
        let stamp = s.tick();
        s.entries.push(Entry { buffer, class, constant: None, stamp });
        s.evict();
    }

    /// A buffer of `usage | COPY_DST` holding `contents`, shared: the cached one with the same
    /// usage and contents, or a new one (cached when it fits the budget). Never written again.
    pub(crate) fn constant(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        usage: wgpu::BufferUsages,
        contents: &[u8],
        label: &str,
    ) -> wgpu::Buffer {
        let usage = usage | wgpu::BufferUsages::COPY_DST;
        let mut hasher = DefaultHasher::new();
        contents.hash(&mut hasher);
        let hash = hasher.finish();
        {
            let mut s = self.lock();
            let stamp = s.tick();
            let found = s.entries.iter_mut().find(|e| {
                e.buffer.usage() == usage && e.constant.as_ref().is_some_and(|(h, c)| *h == hash && c == contents)
            });
            if let Some(e) = found {
                e.stamp = stamp;
                let buffer = e.buffer.clone();
                s.stats.reused += 1;
                return buffer;
            }
            s.stats.created += 1;
        }
        let buffer = upload(device, queue, label, contents, usage);
        let mut s = self.lock();
        let stamp = s.tick();
        s.entries.push(Entry {
            buffer: buffer.clone(),
            class: Class::Host,
            constant: Some((hash, contents.to_vec())),
            stamp,
        });
        s.evict();
        buffer
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let s = self.lock();
        let mut stats = s.stats;
        for e in &s.entries {
            if e.constant.is_some() {
                stats.constant_buffers += 1;
                stats.constant_bytes += e.buffer.size();
            } else {
                stats.free_buffers += 1;
                stats.free_bytes += e.buffer.size();
            }
        }
        stats
    }

    pub(crate) fn set_budget(&self, bytes: u64, max_buffers: usize) {
        let mut s = self.lock();
        s.stats.budget = bytes;
        s.stats.max_buffers = max_buffers;
        s.evict();
    }

    pub(crate) fn clear(&self) {
        let mut s = self.lock();
        let n = s.entries.len() as u64;
        s.entries.clear();
        s.stats.evicted += n;
    }
}

/// Buffers of one class a call took from the pool, given back when dropped (for [`Class::Host`]:
/// drop them after the submit).
pub(crate) struct Leases {
    pool: Arc<BufferPool>,
    class: Class,
    buffers: Vec<wgpu::Buffer>,
}

impl Leases {
    pub(crate) fn new(pool: Arc<BufferPool>, class: Class) -> Self {
        Self { pool, class, buffers: Vec::new() }
    }

    /// Takes a buffer from the pool for the lifetime of these leases.
    pub(crate) fn take(
        &mut self,
        device: &wgpu::Device,
        usage: wgpu::BufferUsages,
        bytes: u64,
        label: &str,
    ) -> wgpu::Buffer {
        let buffer = self.pool.take(device, self.class, usage, bytes, label);
        self.buffers.push(buffer.clone());
        buffer
    }

    /// Forgets the buffers instead of giving them back (after an error, when they may be invalid).
    pub(crate) fn discard(mut self) {
        self.buffers.clear();
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        for b in self.buffers.drain(..) {
            self.pool.give(self.class, b);
        }
    }
}

//! Waiting for a buffer map: `map_async` with a oneshot channel, and what drives the device until
//! wgpu calls back (blocking, a helper thread, yields, or the application).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_channel::oneshot;

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};

/// How the `async` functions ([`crate::GqaLayer::forward_async`],
/// [`crate::GpuTensor::to_host_async`]) get wgpu to complete their buffer map. On native
/// backends wgpu calls map callbacks only from `device.poll` (or `queue.submit`); the future itself
/// is completed by the callback, through a `futures` oneshot channel, on any executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsyncPolling {
    /// The default: each wait starts a short-lived helper thread that blocks in
    /// `device.poll(PollType::Wait)` until the GPU is done, then ends. The executor's thread never
    /// blocks and nothing spins.
    #[default]
    Thread,
    /// No thread: each time the future is polled it calls `device.poll(PollType::Poll)` (which never
    /// blocks) and, when the map is not done, wakes itself and yields. Works where threads cannot be
    /// spawned, at the price of a busy wait (the task stays runnable while the GPU works).
    Yield,
    /// The application polls the device (a render loop, its own thread calling
    /// `device.poll(PollType::Wait)`): the future only waits for the callback, and never resolves
    /// if nobody polls.
    External,
}

/// How a wait is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drive {
    /// `device.poll(Wait)` on the caller's thread (the blocking conveniences).
    Block,
    /// As the context's [`AsyncPolling`] says (the `async` functions).
    Async,
}

/// How long the device may stay idle with the map unresolved before a wait gives up. An idle poll
/// is not proof of a lost callback: with several calls in flight another thread's poll may be
/// running this map's callback at that moment, so waits retry (sleeping briefly) until this passes.
const IDLE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The pause between idle polls.
const IDLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// The map callback's result, as a message on failure.
type MapResult = Result<(), String>;

/// Where the map callback sends its result: taken by whoever reports first (the callback, or a
/// helper thread giving up), so exactly one result is sent.
type Slot = Arc<Mutex<Option<oneshot::Sender<MapResult>>>>;

fn send(slot: &Slot, result: MapResult) {
    if let Some(tx) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = tx.send(result);
    }
}

fn is_taken(slot: &Slot) -> bool {
    slot.lock().unwrap_or_else(|e| e.into_inner()).is_none()
}

/// Maps all of `buffer` for reading (its work must be submitted) and resolves once wgpu has
/// called back. A device that is lost or goes idle without calling back gives an error rather than
/// a wait forever (except with [`AsyncPolling::External`], where the application polls).
pub(crate) async fn mapped(ctx: &GpuContext, buffer: &wgpu::Buffer, op: &str, drive: Drive) -> Result<(), GpuError> {
    let (slot, mut rx) = request_map(ctx, buffer, op)?;
    let result = match (drive, ctx.async_polling()) {
        (Drive::Block, _) => drive_here(ctx, &mut rx, op, false).await?,
        (Drive::Async, AsyncPolling::Yield) => drive_here(ctx, &mut rx, op, true).await?,
        (Drive::Async, AsyncPolling::Thread) => {
            spawn_poller(ctx.device.clone(), slot).map_err(|e| GpuError::Device {
                op: op.into(),
                message: format!("cannot start the thread that polls the device: {e}"),
            })?;
            rx.await.map_err(|_| dropped(op))?
        }
        (Drive::Async, AsyncPolling::External) => rx.await.map_err(|_| dropped(op))?,
    };
    // Our staging buffers are valid, unmapped MAP_READ buffers: a map fails only when the device is
    // lost or destroyed.
    result.map_err(|message| GpuError::Device { op: op.into(), message })
}

fn dropped(op: &str) -> GpuError {
    GpuError::Map { op: op.into(), message: "the map callback was dropped".into() }
}

/// Calls `map_async` under a validation scope (an invalid buffer is reported there).
fn request_map(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    op: &str,
) -> Result<(Slot, oneshot::Receiver<MapResult>), GpuError> {
    let (tx, rx) = oneshot::channel();
    let slot: Slot = Arc::new(Mutex::new(Some(tx)));
    let callback_slot = slot.clone();
    scoped(&ctx.device, op, Catch::Validation, || {
        buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let result = r.map_err(|e| format!("mapping the results failed ({e}): the device was lost or destroyed"));
            send(&callback_slot, result);
        });
        Ok((slot, rx))
    })
}

/// Polls the device from this task until the callback has fired: blocking (`Wait`) or not
/// (`Poll`, then a yield).
async fn drive_here(
    ctx: &GpuContext,
    rx: &mut oneshot::Receiver<MapResult>,
    op: &str,
    yield_between: bool,
) -> Result<MapResult, GpuError> {
    let mut idle_since: Option<std::time::Instant> = None;
    loop {
        let poll = if yield_between { wgpu::PollType::Poll } else { wgpu::PollType::wait_indefinitely() };
        let status = ctx.device.poll(poll).map_err(|e| GpuError::Device { op: op.into(), message: e.to_string() })?;
        match rx.try_recv() {
            Ok(Some(result)) => return Ok(result),
            Ok(None) => {}
            Err(_) => return Err(dropped(op)),
        }
        ctx.check_alive(op)?;
        if status.wait_finished() {
            let since = *idle_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= IDLE_GRACE {
                return Err(GpuError::Device {
                    op: op.into(),
                    message: "the device went idle without completing the buffer map".into(),
                });
            }
            if !yield_between {
                std::thread::sleep(IDLE_PAUSE);
            }
        }
        if yield_between {
            YieldNow(false).await;
        }
    }
}

/// A helper thread that blocks in `device.poll(Wait)` until the map's callback has fired (it fires
/// inside that poll), then ends; when the device goes idle without calling back it reports an error
/// in the callback's place.
fn spawn_poller(device: wgpu::Device, slot: Slot) -> std::io::Result<()> {
    std::thread::Builder::new().name("gqa-poll".into()).spawn(move || {
        let started = std::time::Instant::now();
        while started.elapsed() < IDLE_GRACE {
            let polled = device.poll(wgpu::PollType::wait_indefinitely());
            if is_taken(&slot) {
                return;
            }
            if let Err(e) = polled {
                send(&slot, Err(format!("waiting for the device failed: {e}")));
                return;
            }
            // Idle but not yet called back: another thread's poll may be running the callback.
            std::thread::sleep(IDLE_PAUSE);
        }
        send(&slot, Err("the device went idle without completing the buffer map".into()));
    })?;
    Ok(())
}

/// Returns `Pending` once (after waking its task), then `Ready`.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

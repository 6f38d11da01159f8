//! `forward_async` and `to_host_async` on executors that are not pollster: `futures`' `block_on`,
//! several calls joined on one thread, futures sent to other threads; with each `AsyncPolling`:
//! a helper thread polls the device (the default), the future polls and yields, or the application
//! polls (then the future is pending until it does, and the map callback wakes it).

mod api_common;
mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use api_common::{Small, fresh_contexts};
use common::{F32, adapter_name, adapters, assert_close};
use gqa::gpu::{AsyncPolling, GpuTensor, GqaLayer};

/// Counts how often the inner future returned `Pending` (each one a moment the executor's thread
/// was free for other tasks).
struct CountPending<'a, F> {
    inner: Pin<Box<F>>,
    pending: &'a AtomicUsize,
}

impl<F: Future> Future for CountPending<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let r = self.inner.as_mut().poll(cx);
        if r.is_pending() {
            self.pending.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[test]
fn forward_async_runs_on_the_futures_executor() {
    let case = Small::new(21);
    let want = case.oracle();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let layer = GqaLayer::new(ctx, &case.config, &case.weights).unwrap();
        let pending = AtomicUsize::new(0);
        let fut = assert_send(layer.forward_async(&case.query, &case.value, Some(&case.key), &case.options));
        let got = futures::executor::block_on(CountPending { inner: Box::pin(fut), pending: &pending }).unwrap();
        eprintln!("[{name}] forward_async yielded {} time(s) before resolving", pending.load(Ordering::Relaxed));
        assert_close(&format!("{name}: async output"), got.output.data(), want.output.data(), F32);
        assert_close(
            &format!("{name}: async scores"),
            got.scores.as_ref().unwrap().data(),
            want.scores.as_ref().unwrap().data(),
            F32,
        );
    }
}

#[test]
fn several_async_calls_progress_together_on_one_thread() {
    let cases: Vec<Small> = (0..3).map(|i| Small::new(30 + i)).collect();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let layers: Vec<GqaLayer> = cases.iter().map(|c| GqaLayer::new(ctx, &c.config, &c.weights).unwrap()).collect();
        let calls =
            cases.iter().zip(&layers).map(|(c, l)| l.forward_async(&c.query, &c.value, Some(&c.key), &c.options));
        let results = futures::executor::block_on(futures::future::join_all(calls));
        for (i, (got, case)) in results.into_iter().zip(&cases).enumerate() {
            let got = got.unwrap();
            assert_close(&format!("{name}: joined call {i}"), got.output.data(), case.oracle().output.data(), F32);
        }
        // A GPU tensor read back asynchronously, joined with a host call.
        let t = GpuTensor::from_host(ctx, &cases[0].query).unwrap();
        let c = &cases[1];
        let (read, call) = futures::executor::block_on(futures::future::join(
            t.to_host_async(),
            layers[1].forward_async(&c.query, &c.value, Some(&c.key), &c.options),
        ));
        assert_eq!(read.unwrap().data(), cases[0].query.data(), "{name}");
        assert_close(
            &format!("{name}: joined with a read"),
            call.unwrap().output.data(),
            c.oracle().output.data(),
            F32,
        );
    }
}

#[test]
fn async_calls_sent_to_other_threads() {
    let case = Small::new(41);
    let want = case.oracle();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let layer = GqaLayer::new(ctx, &case.config, &case.weights).unwrap();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let fut =
                        assert_send(layer.forward_async(&case.query, &case.value, Some(&case.key), &case.options));
                    s.spawn(move || futures::executor::block_on(fut))
                })
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                let got = h.join().unwrap().unwrap();
                assert_close(&format!("{name}: thread {i}"), got.output.data(), want.output.data(), F32);
            }
        });
    }
}

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl futures::task::ArcWake for Flag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn with_external_polling_the_future_waits_for_the_application_to_poll() {
    let case = Small::new(51);
    let want = case.oracle();
    for ctx in fresh_contexts() {
        let name = adapter_name(&ctx);
        let ctx = ctx.with_async_polling(AsyncPolling::External);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = futures::task::waker(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = Box::pin(layer.forward_async(&case.query, &case.value, Some(&case.key), &case.options));
        // Submitted and waiting for the map: the poll returns at once, nothing polled the device.
        assert!(fut.as_mut().poll(&mut cx).is_pending(), "{name}: resolved before anyone polled the device");
        assert!(!flag.0.load(Ordering::SeqCst), "{name}");
        // The application polls: wgpu maps the buffer and calls back, which wakes the task.
        ctx.device().poll(wgpu::PollType::wait_indefinitely()).unwrap();
        assert!(flag.0.load(Ordering::SeqCst), "{name}: the map callback did not wake the task");
        let Poll::Ready(got) = fut.as_mut().poll(&mut cx) else { panic!("{name}: still pending after the map") };
        assert_close(&format!("{name}: external polling"), got.unwrap().output.data(), want.output.data(), F32);
    }
}

#[test]
fn with_yield_polling_the_future_drives_the_device_itself() {
    let case = Small::new(52);
    let want = case.oracle();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let ctx = ctx.clone().with_async_polling(AsyncPolling::Yield);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        let got =
            futures::executor::block_on(layer.forward_async(&case.query, &case.value, Some(&case.key), &case.options));
        assert_close(&format!("{name}: yield polling"), got.unwrap().output.data(), want.output.data(), F32);
        let t = GpuTensor::from_host(&ctx, &case.query).unwrap();
        assert_eq!(futures::executor::block_on(t.to_host_async()).unwrap().data(), case.query.data(), "{name}");
    }
}

/// Async waits end with an error on a destroyed device, with either polling; and `GqaLayer::new`
/// there is an error too (it used to panic: its uploads were outside a validation scope).
#[test]
fn async_calls_on_a_destroyed_device_are_errors_not_hangs() {
    let case = Small::new(53);
    for ctx in fresh_contexts() {
        let name = adapter_name(&ctx);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        let t = GpuTensor::from_host(&ctx, &case.query).unwrap();
        ctx.device().destroy();
        for polling in [AsyncPolling::Thread, AsyncPolling::Yield] {
            let ctx = ctx.clone().with_async_polling(polling);
            let layer = GqaLayer::new(&ctx, &case.config, &case.weights).map(|_| ()).err();
            eprintln!("[{name}] {polling:?}: a new layer on the destroyed device: {layer:?}");
            let t = GpuTensor::from_buffer(&ctx, t.buffer().clone(), t.shape().to_vec()).unwrap();
            let read = futures::executor::block_on(t.to_host_async());
            assert!(read.is_err(), "{name} {polling:?}: read from a destroyed device");
        }
        let got =
            futures::executor::block_on(layer.forward_async(&case.query, &case.value, Some(&case.key), &case.options));
        let err = got.expect_err("a call on a destroyed device");
        eprintln!("[{name}] forward_async after destroy: {}", err.to_string().replace('\n', " "));
    }
}

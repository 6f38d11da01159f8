//! `GpuTensor`: made from host data or from the caller's buffer (checked), read back blocking and
//! async; calls on GPU tensors (`encode_forward` with `TensorArgs`, `forward_tensors`) against the
//! oracle; and the errors for tensors of the wrong rank or of another device.

mod api_common;
mod common;

use api_common::{Small, fresh_contexts};
use common::{F32, adapter_name, adapters, assert_close};
use gqa::core::GqaError;
use gqa::gpu::{GpuError, GpuTensor, GqaLayer, TensorArgs};

#[test]
fn tensors_round_trip_through_the_gpu() {
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let t = GpuTensor::from_slice(ctx, [2, 3, 4], &data).unwrap();
        assert_eq!((t.shape(), t.len(), t.bytes()), (&[2, 3, 4][..], 24, 96), "{name}");
        assert_eq!(t.buffer().usage(), GpuTensor::USAGE, "{name}");
        assert!(t.is_on(ctx), "{name}");
        assert_eq!(t.to_host().unwrap().data(), &data[..], "{name}: blocking read");
        let host = futures::executor::block_on(t.to_host_async()).unwrap();
        assert_eq!((host.shape(), host.data()), (&[2, 3, 4][..], &data[..]), "{name}: async read");
        let z = GpuTensor::zeros(ctx, [3, 5]).unwrap();
        assert_eq!(z.to_host().unwrap().data(), &[0.0; 15][..], "{name}: zeros");
    }
}

#[test]
fn buffers_are_checked_when_wrapped() {
    let ctx = &adapters()[0];
    let device = ctx.device();
    let buffer = |size, usage| {
        device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage, mapped_at_creation: false })
    };
    let err = GpuTensor::from_buffer(ctx, buffer(40, GpuTensor::USAGE), [2, 3, 2]).unwrap_err();
    assert!(matches!(err, GpuError::Buffer { .. }) && err.to_string().contains("needs 48"), "{err}");
    let err = GpuTensor::from_buffer(ctx, buffer(48, wgpu::BufferUsages::COPY_SRC), [2, 3, 2]).unwrap_err();
    assert!(err.to_string().contains("STORAGE"), "{err}");
    let t = GpuTensor::from_buffer(ctx, buffer(64, wgpu::BufferUsages::STORAGE), [2, 3, 2]).unwrap();
    assert_eq!(t.bytes(), 48);
    let err = t.to_host().unwrap_err();
    assert!(err.to_string().contains("COPY_SRC"), "a tensor without COPY_SRC cannot be read back: {err}");
    let err = GpuTensor::from_slice(ctx, [2, 3], &[1.0; 5]).unwrap_err();
    assert!(matches!(err, GpuError::Invalid(GqaError::DataLength { .. })), "{err}");
    let err = GpuTensor::from_slice(ctx, [usize::MAX, 3], &[]).unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
}

#[test]
fn calls_on_gpu_tensors_match_the_oracle() {
    let case = Small::new(7);
    let want = case.oracle();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let layer = GqaLayer::new(ctx, &case.config, &case.weights).unwrap();
        let q = GpuTensor::from_host(ctx, &case.query).unwrap();
        let v = GpuTensor::from_host(ctx, &case.value).unwrap();
        let k = GpuTensor::from_host(ctx, &case.key).unwrap();

        // Recorded into our encoder, results into new tensors.
        let scope = ctx.device().push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let rec = layer.encode_forward(&mut encoder, &TensorArgs::new(&q, &v).key(&k), &case.options).unwrap();
        ctx.queue().submit([encoder.finish()]);
        assert!(pollster::block_on(scope.pop()).is_none(), "{name}: validation error");
        assert_eq!(rec.output.shape(), want.output.shape(), "{name}");
        assert_close(&format!("{name}: encoded output"), rec.output.to_host().unwrap().data(), want.output.data(), F32);
        let scores = rec.scores.as_ref().unwrap().to_host().unwrap();
        assert_eq!(scores.shape(), want.scores.as_ref().unwrap().shape(), "{name}");
        assert_close(&format!("{name}: encoded scores"), scores.data(), want.scores.as_ref().unwrap().data(), F32);

        // Submitted by the layer, results into our tensors (poisoned first).
        let nan = |shape: &[usize]| GpuTensor::from_slice(ctx, shape, &vec![f32::NAN; shape.iter().product()]);
        let out = nan(want.output.shape()).unwrap();
        let sc = nan(want.scores.as_ref().unwrap().shape()).unwrap();
        let args = TensorArgs::new(&q, &v).key(&k).output(&out).scores(&sc);
        let rec = layer.forward_tensors(&args, &case.options).unwrap();
        assert_eq!(rec.output.buffer(), out.buffer(), "{name}: the output is written into the given tensor");
        assert_close(&format!("{name}: output"), out.to_host().unwrap().data(), want.output.data(), F32);
        assert_close(
            &format!("{name}: scores"),
            sc.to_host().unwrap().data(),
            want.scores.as_ref().unwrap().data(),
            F32,
        );
    }
}

#[test]
fn tensors_of_the_wrong_rank_or_device_are_errors() {
    let case = Small::new(3);
    let ctx = &adapters()[0];
    let layer = GqaLayer::new(ctx, &case.config, &case.weights).unwrap();
    let q = GpuTensor::from_host(ctx, &case.query).unwrap();
    let v = GpuTensor::from_host(ctx, &case.value).unwrap();
    let k = GpuTensor::from_host(ctx, &case.key).unwrap();
    let flat = GpuTensor::from_slice(ctx, [case.value.len()], case.value.data()).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let err = layer.encode_forward(&mut encoder, &TensorArgs::new(&q, &flat), &case.options).unwrap_err();
    assert!(matches!(err, GpuError::Invalid(GqaError::Rank { .. })) && err.to_string().contains("value"), "{err}");
    let other = fresh_contexts().remove(0);
    let elsewhere = GpuTensor::from_host(&other, &case.value).unwrap();
    assert!(!elsewhere.is_on(ctx));
    let err = layer.encode_forward(&mut encoder, &TensorArgs::new(&q, &elsewhere), &case.options).unwrap_err();
    assert!(matches!(err, GpuError::Buffer { .. }) && err.to_string().contains("another context"), "{err}");
    let small_out = GpuTensor::zeros(ctx, [1, 2, 3]).unwrap();
    let err = layer.forward_tensors(&TensorArgs::new(&q, &v).key(&k).output(&small_out), &case.options).unwrap_err();
    assert!(err.to_string().contains("Output") && err.to_string().contains("needs"), "{err}");
}

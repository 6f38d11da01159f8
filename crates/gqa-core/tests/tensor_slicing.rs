//! Slicing host tensors and masks along an axis (a batch's sequences, a time window) and joining
//! them back.

use gqa_core::{GqaError, HostTensor, Mask};

/// (B=3, T=4, D=2) holding 100 * b + 10 * t + d.
fn batch() -> HostTensor {
    let data = (0..3).flat_map(|b| (0..4).flat_map(move |t| (0..2).map(move |d| (100 * b + 10 * t + d) as f32)));
    HostTensor::new([3, 4, 2], data.collect()).unwrap()
}

fn value(x: &HostTensor, [b, t, d]: [usize; 3]) -> f32 {
    let s = x.shape();
    x.data()[(b * s[1] + t) * s[2] + d]
}

#[test]
fn rows_take_whole_sequences() {
    let x = batch();
    let r = x.rows(1..3).unwrap();
    assert_eq!(r.shape(), [2, 4, 2]);
    assert_eq!(value(&r, [0, 2, 1]), 121.0);
    assert_eq!(value(&r, [1, 3, 0]), 230.0);
    assert_eq!(x.rows(..).unwrap(), x);
    assert_eq!(x.rows(2..=2).unwrap().data(), &x.data()[16..]);
    let empty = x.rows(1..1).unwrap();
    assert_eq!((empty.shape(), empty.is_empty()), (&[0, 4, 2][..], true));
}

#[test]
fn time_slice_takes_a_window_of_every_sequence() {
    let x = batch();
    let w = x.time_slice(1..3).unwrap();
    assert_eq!(w.shape(), [3, 2, 2]);
    for b in 0..3 {
        for t in 0..2 {
            for d in 0..2 {
                assert_eq!(value(&w, [b, t, d]), (100 * b + 10 * (t + 1) + d) as f32);
            }
        }
    }
    assert_eq!(x.time_slice(3..).unwrap().data(), [30.0, 31.0, 130.0, 131.0, 230.0, 231.0]);
    assert_eq!(x.slice_axis(2, 1..).unwrap().shape(), [3, 4, 1]);
    assert_eq!(x.slice_axis(1, 1..3).unwrap(), w);
}

#[test]
fn out_of_range_is_an_error_naming_the_slice() {
    let x = batch();
    let err = x.rows(2..4).unwrap_err();
    assert_eq!(err, GqaError::Slice { op: "HostTensor::rows", shape: vec![3, 4, 2], axis: 0, start: 2, end: 4 });
    assert!(err.to_string().contains("2..4") && err.to_string().contains("[3, 4, 2]"), "{err}");
    assert!(matches!(x.time_slice(0..5), Err(GqaError::Slice { axis: 1, end: 5, .. })));
    #[allow(clippy::reversed_empty_ranges, reason = "the error case under test")]
    let reversed = x.time_slice(3..1);
    assert!(matches!(reversed, Err(GqaError::Slice { start: 3, end: 1, .. })));
    assert!(matches!(x.slice_axis(3, ..), Err(GqaError::Slice { axis: 3, .. })));
    assert!(matches!(x.rows(..=usize::MAX), Err(GqaError::Slice { .. })));
    let vector = HostTensor::new([3], vec![1.0, 2.0, 3.0]).unwrap();
    assert!(matches!(vector.time_slice(..), Err(GqaError::Slice { axis: 1, .. })));
    assert_eq!(vector.rows(1..).unwrap().data(), [2.0, 3.0]);
}

#[test]
fn concat_inverts_slicing() {
    let x = batch();
    let parts = [x.time_slice(..1).unwrap(), x.time_slice(1..3).unwrap(), x.time_slice(3..).unwrap()];
    assert_eq!(HostTensor::concat(&parts, 1).unwrap(), x);
    let rows = [x.rows(..2).unwrap(), x.rows(2..).unwrap()];
    assert_eq!(HostTensor::concat(&rows, 0).unwrap(), x);
    assert!(matches!(HostTensor::concat(&[], 0), Err(GqaError::ShapeMismatch { .. })));
    assert!(matches!(HostTensor::concat(&parts, 3), Err(GqaError::ShapeMismatch { .. })));
    // Disagreeing outside the axis.
    let err = HostTensor::concat(&[x.rows(..1).unwrap(), x.time_slice(..2).unwrap()], 0).unwrap_err();
    assert!(err.to_string().contains("differ outside axis 0"), "{err}");
}

#[test]
fn masks_slice_like_tensors() {
    let m = Mask::new([2, 3], vec![true, false, true, false, false, true]).unwrap();
    assert_eq!(m.rows(1..).unwrap(), Mask::new([1, 3], vec![false, false, true]).unwrap());
    assert_eq!(m.slice_axis(1, 1..).unwrap(), Mask::new([2, 2], vec![false, true, false, true]).unwrap());
    assert!(matches!(m.slice_axis(1, 2..4), Err(GqaError::Slice { op: "Mask::slice_axis", .. })));
}

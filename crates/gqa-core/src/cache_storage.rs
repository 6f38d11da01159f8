//! How a KV cache stores its keys and values, and the quantization that every implementation
//! performs bit for bit: the GPU's append kernel (`shaders/cache_append.wgsl`), the oracle's cache
//! and a cache's `load`.
//!
//! - [`CacheStorage::F32`]: the projected values as they are.
//! - [`CacheStorage::F16`]: each value rounded to the nearest f16 (ties to even), two to a 32-bit
//!   word. A decode step reads half the bytes; no device feature is needed (the kernels unpack
//!   with `unpack2x16float`, whose conversion to f32 is exact).
//! - [`CacheStorage::Int8`]: per token and kv head, `H` signed bytes `q` and one f32 scale `s`, the
//!   value `q * s`. The scale is the smallest power of two with `127 * s >= max |x|` (at least
//!   2^-126), so that `x / s` and `q * s` are exact in f32 on every device and `q = round(x / s)`
//!   (ties to even, in -127..=127) is the same everywhere, whatever a driver's division or fused
//!   multiply-add does. A power of two costs up to one bit against `max |x| / 127`: the
//!   quantization's error is measured in docs/PERFORMANCE.md. Values below f32's smallest normal
//!   count as 0 (GPUs may flush them). A head vector holding a NaN or an infinity is stored with
//!   a NaN scale: every value of it reads back as NaN, so that a non-finite key or value still
//!   makes the rows that read it NaN (its sign and whether it was infinite are lost).
//!
//! A token's keys (or values) take [`CacheStorage::token_words`] 32-bit words: `Nkv·H` f32,
//! `Nkv·H / 2` words of f16 pairs, or `Nkv·H / 4` words of int8 quadruples (the first value in
//! the lowest byte) followed by the `Nkv` scales.

use std::fmt;
use std::str::FromStr;

use crate::error::GqaError;
use crate::kernels::Precision;

/// How a KV cache stores its keys and values (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CacheStorage {
    /// f32, 4 bytes per value.
    #[default]
    F32,
    /// f16 (round to nearest even), 2 bytes per value.
    F16,
    /// int8 with a power-of-two f32 scale per (token, kv head): `H + 4` bytes per head.
    Int8,
}

/// A quantized storage: what the append kernel writes and the attention kernels over a quantized
/// cache read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantization {
    /// f16 pairs in 32-bit words.
    F16,
    /// int8 quadruples in 32-bit words, then one f32 scale per kv head.
    Int8,
}

impl CacheStorage {
    /// Every storage, in the order of their names.
    pub const ALL: [CacheStorage; 3] = [CacheStorage::F32, CacheStorage::F16, CacheStorage::Int8];

    /// Its quantization; `None` for f32.
    pub fn quantization(self) -> Option<Quantization> {
        match self {
            CacheStorage::F32 => None,
            CacheStorage::F16 => Some(Quantization::F16),
            CacheStorage::Int8 => Some(Quantization::Int8),
        }
    }

    /// The storage that holds keys and values exactly as a layer computing in `precision` projects
    /// them: f32 for [`Precision::F32`], f16 for [`Precision::F16`] (its projections are f16 words,
    /// two to a 32-bit word: the bytes of an f16 cache). A layer's default cache.
    pub fn native(precision: Precision) -> CacheStorage {
        match precision {
            Precision::F32 => CacheStorage::F32,
            Precision::F16 => CacheStorage::F16,
        }
    }

    /// The quantization through which a cached call computing in `precision` appends to and reads
    /// this storage: `None` for the precision's [`CacheStorage::native`] storage (the projections
    /// are copied into it and the attention reads it as its own K and V), else the storage's
    /// quantization (f32 calls over f16 or int8; an f16 call takes its native cache only).
    pub fn quantized_for(self, precision: Precision) -> Option<Quantization> {
        if self == CacheStorage::native(precision) { None } else { self.quantization() }
    }

    /// Checks that a cached call computing in `precision` can use this storage: any storage in
    /// f32; in f16 only the f16 storage that its projections write (the quantizing append and the
    /// attention over a quantized cache run in f32).
    pub fn check_precision(self, op: &'static str, precision: Precision) -> Result<(), GqaError> {
        let native = CacheStorage::native(precision);
        if precision != Precision::F32 && self != native {
            return Err(GqaError::IncompatibleOptions(format!(
                "{op}: a layer computing in {native} keeps its keys and values in an {native} KV cache \
                 (as its projections produce them); an {self} cache needs an f32 layer"
            )));
        }
        Ok(())
    }

    /// The name the CLI and reports use: `f32`, `f16` or `int8`.
    pub fn name(self) -> &'static str {
        match self {
            CacheStorage::F32 => "f32",
            CacheStorage::F16 => "f16",
            CacheStorage::Int8 => "int8",
        }
    }

    /// 32-bit words of one token's keys (or values) of `nkv` heads of `head_dim` (a multiple of 4
    /// for the quantized storages, [`CacheStorage::check_head_dim`]).
    pub fn token_words(self, nkv: usize, head_dim: usize) -> u64 {
        let (nkv, h) = (nkv as u64, head_dim as u64);
        match self {
            CacheStorage::F32 => nkv * h,
            CacheStorage::F16 => nkv * h / 2,
            CacheStorage::Int8 => nkv * (h / 4 + 1),
        }
    }

    /// Checks that heads of `head_dim` can be stored: the quantized storages pack 4 values of a
    /// head at a time, so H must be a multiple of 4.
    pub fn check_head_dim(self, op: &'static str, head_dim: usize) -> Result<(), GqaError> {
        if self != CacheStorage::F32 && !head_dim.is_multiple_of(4) {
            return Err(GqaError::IncompatibleOptions(format!(
                "{op}: an {} KV cache packs 4 values of a head at a time; head_dim {head_dim} is not a multiple of 4",
                self.name()
            )));
        }
        Ok(())
    }

    /// Stores one token's keys (or values), `Nkv` heads of `head_dim` values, as its words.
    pub fn encode_token(self, values: &[f32], head_dim: usize) -> Vec<u32> {
        match self {
            CacheStorage::F32 => values.iter().map(|v| v.to_bits()).collect(),
            CacheStorage::F16 => values
                .chunks(2)
                .map(|p| f16_bits(p[0]) as u32 | (p.get(1).map_or(0, |&v| f16_bits(v) as u32) << 16))
                .collect(),
            CacheStorage::Int8 => {
                let heads = values.len() / head_dim.max(1);
                let mut words = Vec::with_capacity(values.len() / 4 + heads);
                let mut scales = Vec::with_capacity(heads);
                for head in values.chunks(head_dim.max(1)) {
                    let scale = int8_scale(head);
                    scales.push(scale.to_bits());
                    for quad in head.chunks(4) {
                        let bytes: [u8; 4] = std::array::from_fn(|i| int8_quantize(quad[i], scale) as u8);
                        words.push(u32::from_le_bytes(bytes));
                    }
                }
                words.extend(scales);
                words
            }
        }
    }

    /// The values of one token's words (the inverse of [`CacheStorage::encode_token`] up to the
    /// quantization): `nkv * head_dim` f32.
    pub fn decode_token(self, words: &[u32], nkv: usize, head_dim: usize) -> Vec<f32> {
        match self {
            CacheStorage::F32 => words.iter().map(|&w| f32::from_bits(w)).collect(),
            CacheStorage::F16 => words
                .iter()
                .flat_map(|&w| [f16_value(w as u16), f16_value((w >> 16) as u16)])
                .take(nkv * head_dim)
                .collect(),
            CacheStorage::Int8 => {
                let (data, scales) = words.split_at(nkv * head_dim / 4);
                let mut out = Vec::with_capacity(nkv * head_dim);
                for (g, &scale) in scales.iter().enumerate() {
                    let scale = f32::from_bits(scale);
                    for &w in &data[g * head_dim / 4..(g + 1) * head_dim / 4] {
                        out.extend(w.to_le_bytes().map(|b| b as i8 as f32 * scale));
                    }
                }
                out
            }
        }
    }

    /// The value a stored `x` reads back as, for one head vector `head` holding it (the oracle's
    /// cache applies this to every value it appends).
    pub fn round_trip(self, head: &[f32]) -> Vec<f32> {
        match self {
            CacheStorage::F32 => head.to_vec(),
            CacheStorage::F16 => head.iter().map(|&x| f16_value(f16_bits(x))).collect(),
            CacheStorage::Int8 => {
                let scale = int8_scale(head);
                head.iter().map(|&x| int8_quantize(x, scale) as f32 * scale).collect()
            }
        }
    }

    /// Stores projected values `new` (whole head vectors of `head_dim`, f64 as the oracle computes
    /// them) into `dst` as the cache reads them back: as they are in an f32 cache (kept in f64, as
    /// the oracle keeps its cache), else rounded to f32 and quantized ([`CacheStorage::round_trip`]).
    pub fn store(self, new: &[f64], dst: &mut [f64], head_dim: usize) {
        if self == CacheStorage::F32 {
            dst.copy_from_slice(new);
            return;
        }
        for (src, out) in new.chunks(head_dim).zip(dst.chunks_mut(head_dim)) {
            let head: Vec<f32> = src.iter().map(|&x| x as f32).collect();
            for (o, x) in out.iter_mut().zip(self.round_trip(&head)) {
                *o = f64::from(x);
            }
        }
    }
}

impl fmt::Display for CacheStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CacheStorage {
    type Err = GqaError;

    fn from_str(s: &str) -> Result<Self, GqaError> {
        CacheStorage::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            GqaError::IncompatibleOptions(format!("unknown KV cache storage {s:?}: expected f32, f16 or int8"))
        })
    }
}

/// The f16 nearest to `x` (ties to even; overflow to infinity; NaN stays NaN), as its bits.
pub fn f16_bits(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

/// The f32 value of f16 `bits` (exact).
pub fn f16_value(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// f32's smallest normal value: smaller magnitudes count as 0 in the int8 quantization.
const MIN_NORMAL: f32 = f32::MIN_POSITIVE;

/// The int8 scale of one head vector: NaN if it holds a non-finite value, else the smallest power
/// of two `s >= 2^-126` with `127 * s >= max |x|` (values below [`f32::MIN_POSITIVE`] count as 0).
pub fn int8_scale(head: &[f32]) -> f32 {
    if head.iter().any(|x| !x.is_finite()) {
        return f32::NAN;
    }
    let amax = head.iter().map(|x| x.abs()).filter(|&a| a >= MIN_NORMAL).fold(0.0f32, f32::max);
    if amax == 0.0 {
        return MIN_NORMAL;
    }
    // amax = m · 2^ex with m = 1.mantissa / 2 in [0.5, 1): 127 · 2^(ex - 7) = (127/128) · 2^ex
    // covers m <= 127/128 (a mantissa field <= 0x7e0000), else 2^(ex - 6) does.
    let bits = amax.to_bits();
    let ex = (bits >> 23) as i32 - 126;
    let e = if bits & 0x007f_ffff <= 0x007e_0000 { ex - 7 } else { ex - 6 };
    pow2(e.max(-126))
}

/// `x` quantized with `scale` (from [`int8_scale`]): `round(x / scale)`, ties to even, in
/// -127..=127 (0 for magnitudes below f32's smallest normal, and for any `x` when the scale is NaN).
pub fn int8_quantize(x: f32, scale: f32) -> i8 {
    if scale.is_nan() || x.abs() < MIN_NORMAL {
        return 0;
    }
    // scale is a power of two: the product is exact.
    (x * (1.0 / scale)).round_ties_even().clamp(-127.0, 127.0) as i8
}

/// 2^e for e in -126..=127, exactly.
fn pow2(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_scales_are_the_smallest_power_of_two_covering_the_head() {
        for amax in [1e-30f32, 0.001, 0.5, 0.99, 1.0, 126.9, 127.0, 127.5, 128.0, 3.0e38] {
            let s = int8_scale(&[0.0, -amax, amax / 3.0]);
            assert_eq!(s.to_bits() & 0x007f_ffff, 0, "a power of two");
            assert!(127.0 * s >= amax, "{amax}: {s}");
            assert!(s == MIN_NORMAL || 127.0 * (s / 2.0) < amax, "{amax}: {s} is not the smallest");
        }
        assert_eq!(int8_scale(&[0.0, 0.0]), MIN_NORMAL);
        assert!(int8_scale(&[1.0, f32::INFINITY]).is_nan());
        assert!(int8_scale(&[f32::NAN]).is_nan());
    }

    #[test]
    fn int8_round_trip_is_within_half_a_step_and_rounds_ties_to_even() {
        let head: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 31.5) * 0.173).collect();
        let s = int8_scale(&head);
        for (x, y) in head.iter().zip(CacheStorage::Int8.round_trip(&head)) {
            assert!((x - y).abs() <= s / 2.0, "{x} -> {y}");
        }
        // 2.5 steps and 3.5 steps round to 2 and 4.
        assert_eq!(int8_quantize(2.5, 1.0), 2);
        assert_eq!(int8_quantize(3.5, 1.0), 4);
        assert_eq!(int8_quantize(-127.0, 1.0), -127);
    }

    #[test]
    fn tokens_encode_and_decode_in_every_storage() {
        let (nkv, h) = (3, 8);
        let values: Vec<f32> = (0..nkv * h).map(|i| (i as f32 - 11.0) * 0.37).collect();
        for storage in CacheStorage::ALL {
            let words = storage.encode_token(&values, h);
            assert_eq!(words.len() as u64, storage.token_words(nkv, h), "{storage}");
            let back = storage.decode_token(&words, nkv, h);
            let expect: Vec<f32> = values.chunks(h).flat_map(|head| storage.round_trip(head)).collect();
            assert_eq!(back, expect, "{storage}");
        }
    }

    #[test]
    fn f16_rounds_to_nearest_even() {
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even gives 1.
        assert_eq!(f16_value(f16_bits(1.0 + 2f32.powi(-11))), 1.0);
        assert_eq!(f16_value(f16_bits(1.0 + 3.0 * 2f32.powi(-11))), 1.0 + 2.0 * 2f32.powi(-10));
        assert_eq!(f16_value(f16_bits(65520.0)), f32::INFINITY);
        assert!(f16_value(f16_bits(f32::NAN)).is_nan());
    }

    #[test]
    fn names_parse_back() {
        for storage in CacheStorage::ALL {
            assert_eq!(storage.name().parse::<CacheStorage>().unwrap(), storage);
        }
        assert!("bf16".parse::<CacheStorage>().is_err());
        assert!(CacheStorage::Int8.check_head_dim("t", 6).is_err());
        assert!(CacheStorage::F32.check_head_dim("t", 6).is_ok());
    }
}

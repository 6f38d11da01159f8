//! The one error type of gqa-io: every message names the file, and the tensor and the expected shape
//! where there is one.

use gqa_core::GqaError;
use thiserror::Error;

/// What can go wrong reading or writing a Keras layer, its inputs or its outputs.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid in its format (safetensors, zip, HDF5, JSON).
    #[error("{file}: not a valid {format} file: {message}")]
    Format {
        /// The file (for an entry of a `.keras` zip, `file.keras!entry`).
        file: String,
        /// `safetensors`, `zip`, `HDF5` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// The file name does not say which format it is.
    #[error("{file}: unknown layer file type: expected .safetensors, .keras or .weights.h5 (with a config JSON)")]
    UnknownFileType {
        /// The file.
        file: String,
    },
    /// A `.keras` zip lacks an entry.
    #[error("{file}: the .keras archive has no entry {entry} (entries: {entries:?})")]
    MissingEntry {
        /// The `.keras` file.
        file: String,
        /// The entry wanted (`config.json`, `model.weights.h5`).
        entry: String,
        /// The entries it has.
        entries: Vec<String>,
    },
    /// The layer's config is nowhere to be found.
    #[error("{file}: no layer config: {hint}")]
    NoConfig {
        /// The file.
        file: String,
        /// Where the config was looked for, and how to give it.
        hint: String,
    },
    /// The config is invalid (bad JSON fields, an unknown initializer, Nq not divisible by Nkv ...).
    #[error("{file}: invalid GroupQueryAttention config: {source}")]
    Config {
        /// The file the config came from.
        file: String,
        /// What is wrong (boxed: `GqaError` is large).
        #[source]
        source: Box<GqaError>,
    },
    /// The config is for a layer of another class.
    #[error("{file}: the config is for class {found:?}, expected GroupQueryAttention")]
    WrongClass {
        /// The file.
        file: String,
        /// The `class_name` found.
        found: String,
    },
    /// The file's `class_name` metadata names a class this crate cannot load as asked.
    #[error("{file}: class {found:?}: {expected}")]
    UnknownClass {
        /// The file.
        file: String,
        /// The class named (`none` when the metadata names none).
        found: String,
        /// What was expected, with the supported classes.
        expected: String,
    },
    /// No GroupQueryAttention layer (of the wanted name) is in the file.
    #[error("{file}: no GroupQueryAttention layer{} found; layers found: {found:?}", wanted.as_ref().map(|w| format!(" named {w:?}")).unwrap_or_default())]
    LayerNotFound {
        /// The file.
        file: String,
        /// The layer name looked for, if any.
        wanted: Option<String>,
        /// What was found instead (layer names, or `class name` pairs).
        found: Vec<String>,
    },
    /// Several GroupQueryAttention layers are in the file and none was chosen.
    #[error("{file}: several GroupQueryAttention layers {found:?}: choose one by name")]
    AmbiguousLayer {
        /// The file.
        file: String,
        /// Their names.
        found: Vec<String>,
    },
    /// The Dq/Dk/Dv the layer was built for cannot be read.
    #[error("{file}: cannot tell the layer's input dims: {message}")]
    Dims {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// A weight the config requires is not in the file.
    #[error("{file}: missing weight {tensor}: expected shape {expected}")]
    MissingWeight {
        /// The file.
        file: String,
        /// The tensor's name in the file (and its Keras path when that differs).
        tensor: String,
        /// The shape the config requires (`Dk` where the dim is unknown).
        expected: String,
    },
    /// A weight has the wrong shape.
    #[error("{file}: weight {tensor} has shape {got:?}, expected {expected}")]
    WeightShape {
        /// The file.
        file: String,
        /// The tensor's name in the file (and its Keras path when that differs).
        tensor: String,
        /// The shape the config requires.
        expected: String,
        /// The shape in the file.
        got: Vec<usize>,
    },
    /// A weight is in the file that the config does not have.
    #[error("{file}: unexpected weight {tensor}: {reason}")]
    UnexpectedWeight {
        /// The file.
        file: String,
        /// The tensor's name in the file.
        tensor: String,
        /// Why it is unexpected (`use_bias is false` ...).
        reason: String,
    },
    /// A tensor has a dtype that cannot be used where it is.
    #[error("{file}: tensor {tensor} has dtype {dtype}, expected {expected}")]
    Dtype {
        /// The file.
        file: String,
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: String,
        /// The dtypes accepted.
        expected: &'static str,
    },
    /// A tensor the call needs is not in the file.
    #[error("{file}: no tensor {tensor:?} ({hint})")]
    MissingTensor {
        /// The file.
        file: String,
        /// The tensor's name.
        tensor: String,
        /// What it is.
        hint: String,
    },
    /// The call options recorded in the file's metadata (`call`) cannot be read or applied.
    #[error("{file}: metadata \"call\": {message}")]
    CallMetadata {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor's data does not fit its shape, or shapes disagree.
    #[error("{file}: tensor {tensor}: {source}")]
    Tensor {
        /// The file.
        file: String,
        /// The tensor.
        tensor: String,
        /// What is wrong (boxed: `GqaError` is large).
        #[source]
        source: Box<GqaError>,
    },
}

/// Result with [`IoError`].
pub type Result<T, E = IoError> = std::result::Result<T, E>;

/// Formats a shape as `[6, 4, 2]`.
pub(crate) fn shape_str(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

//! Loading a layer from the files Keras writes ([`GqaLayer::from_keras_file`], feature `io`).

use crate::{GpuError, GqaLayer};

/// Why [`GqaLayer::from_keras_file`] failed: the file (reading, format, config, weights' shapes), or
/// the GPU (uploading the weights).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read as a layer (see [`gqa_io::IoError`]).
    #[error(transparent)]
    Io(#[from] gqa_io::IoError),
    /// The layer could not be built on the device.
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

impl GqaLayer {
    /// Loads a layer from a file Keras users have and uploads it: a `.keras` archive (holding one
    /// GroupQueryAttention layer) or a `.safetensors` file with the config in its metadata, as
    /// [`gqa_io::load_layer`] reads them. A `.weights.h5`, which has no config, or a file holding
    /// several layers needs [`GqaLayer::from_keras_file_with`].
    ///
    /// ```no_run
    /// let ctx = gqa_wgpu::GpuContext::new()?;
    /// let layer = gqa_wgpu::GqaLayer::from_keras_file(&ctx, "model.keras")?;
    /// println!("{} query heads, dims {:?}", layer.config().num_query_heads, layer.dims());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_keras_file(ctx: &crate::GpuContext, path: impl AsRef<std::path::Path>) -> Result<Self, LoadError> {
        Self::from_keras_file_with(ctx, path, &gqa_io::LoadOptions::default())
    }

    /// [`GqaLayer::from_keras_file`] with [`gqa_io::LoadOptions`]: the config JSON of a
    /// `.weights.h5` (or one overriding a safetensors file's metadata), the layer's name in a file
    /// holding several.
    ///
    /// ```no_run
    /// use std::path::Path;
    /// let ctx = gqa_wgpu::GpuContext::new()?;
    /// let options = gqa_io::LoadOptions { config: Some(Path::new("model.json")), layer_name: Some("attn") };
    /// let layer = gqa_wgpu::GqaLayer::from_keras_file_with(&ctx, "model.weights.h5", &options)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_keras_file_with(
        ctx: &crate::GpuContext,
        path: impl AsRef<std::path::Path>,
        options: &gqa_io::LoadOptions<'_>,
    ) -> Result<Self, LoadError> {
        let layer = gqa_io::load_layer(path.as_ref(), options)?;
        Ok(Self::new(ctx, &layer.config, &layer.weights)?)
    }
}

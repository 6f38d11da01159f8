//! The device limits a plan is checked against, without depending on wgpu.

/// The subset of `wgpu::Limits` that plans depend on. Field names follow wgpu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest storage buffer binding, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer, bytes.
    pub max_buffer_size: u64,
    /// Largest uniform buffer binding, bytes.
    pub max_uniform_buffer_binding_size: u64,
    /// Workgroups per dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Workgroup memory, bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Invocations per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Storage buffers per shader stage.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Storage textures per shader stage.
    pub max_storage_textures_per_shader_stage: u32,
    /// Largest width or height of a 2D texture, texels.
    pub max_texture_dimension_2d: u32,
}

impl Limits {
    /// WebGPU's default limits (what every adapter offers).
    pub const fn webgpu_default() -> Self {
        Self {
            max_storage_buffer_binding_size: 128 << 20,
            max_buffer_size: 256 << 20,
            max_uniform_buffer_binding_size: 64 << 10,
            max_compute_workgroups_per_dimension: 65_535,
            max_compute_workgroup_storage_size: 16_384,
            max_compute_invocations_per_workgroup: 256,
            max_storage_buffers_per_shader_stage: 8,
            max_storage_textures_per_shader_stage: 4,
            max_texture_dimension_2d: 8192,
        }
    }
}

impl Limits {
    /// Each limit the lower of `self` and `other` (a device's limits under a cap).
    pub fn min(&self, other: &Limits) -> Limits {
        Limits {
            max_storage_buffer_binding_size: self
                .max_storage_buffer_binding_size
                .min(other.max_storage_buffer_binding_size),
            max_buffer_size: self.max_buffer_size.min(other.max_buffer_size),
            max_uniform_buffer_binding_size: self
                .max_uniform_buffer_binding_size
                .min(other.max_uniform_buffer_binding_size),
            max_compute_workgroups_per_dimension: self
                .max_compute_workgroups_per_dimension
                .min(other.max_compute_workgroups_per_dimension),
            max_compute_workgroup_storage_size: self
                .max_compute_workgroup_storage_size
                .min(other.max_compute_workgroup_storage_size),
            max_compute_invocations_per_workgroup: self
                .max_compute_invocations_per_workgroup
                .min(other.max_compute_invocations_per_workgroup),
            max_storage_buffers_per_shader_stage: self
                .max_storage_buffers_per_shader_stage
                .min(other.max_storage_buffers_per_shader_stage),
            max_storage_textures_per_shader_stage: self
                .max_storage_textures_per_shader_stage
                .min(other.max_storage_textures_per_shader_stage),
            max_texture_dimension_2d: self.max_texture_dimension_2d.min(other.max_texture_dimension_2d),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::webgpu_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_takes_each_lower_limit() {
        let cap = Limits {
            max_storage_buffer_binding_size: 1024,
            max_compute_workgroups_per_dimension: 1 << 20,
            ..Limits::default()
        };
        let m = Limits::default().min(&cap);
        assert_eq!(m.max_storage_buffer_binding_size, 1024);
        assert_eq!(m.max_compute_workgroups_per_dimension, 65_535);
        assert_eq!(m, cap.min(&Limits::default()));
    }
}

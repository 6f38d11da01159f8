//! RADV's null device through raw Vulkan (ash): the instance, the RADV physical device of the
//! family Mesa was told (`RADV_FORCE_FAMILY`, read when the instance enumerates its devices), and
//! a logical device with `VK_KHR_pipeline_executable_properties` and the features the kernels need
//! (f16 storage and arithmetic; subgroup operations are core in Vulkan 1.1) and those wgpu enables
//! where the device has them (robust buffer and image access, subgroup size control, int8, integer
//! dot products, zero-initialized workgroup memory).

use std::ffi::{CStr, c_char};

use ash::{khr, vk};

use crate::error::IsaError;
use crate::spirv::SpirvTarget;

/// The environment variable Mesa reads for the GPU family RADV's null device pretends to be.
pub const FAMILY_VAR: &str = "RADV_FORCE_FAMILY";

/// An open RADV device, with what the compiler needs of it.
pub struct RadvDevice {
    // `Drop` destroys the device, then the instance; the loader (`_entry`) is unloaded after.
    pub(crate) statistics: khr::pipeline_executable_properties::Device,
    pub(crate) device: ash::Device,
    instance: ash::Instance,
    _entry: ash::Entry,
    /// The device's name, as the driver gives it (e.g. `Null hardware (RADV NAVI21)`).
    pub name: String,
    /// The SPIR-V options wgpu would write for it.
    pub target: SpirvTarget,
    /// Whether pipelines are created with `ALLOW_VARYING_SUBGROUP_SIZE`, as wgpu does on devices
    /// with subgroups and subgroup size control.
    pub(crate) varying_subgroup_size: bool,
}

impl std::fmt::Debug for RadvDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadvDevice").field("name", &self.name).field("target", &self.target).finish_non_exhaustive()
    }
}

fn vulkan(call: &str) -> impl FnOnce(vk::Result) -> IsaError + '_ {
    move |result| IsaError::Vulkan { call: call.to_string(), result }
}

fn text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl RadvDevice {
    /// Opens RADV's null device for the family of this process's environment
    /// ([`FAMILY_VAR`]); the Vulkan loader finds the driver as usual (`VK_ICD_FILENAMES`, else
    /// its standard directories), and the first RADV device is taken.
    pub fn open() -> Result<Self, IsaError> {
        // SAFETY: loads libvulkan.so.1 and resolves its entry points; no other library code runs.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| IsaError::NoVulkanLoader(e.to_string()))?;
        let app = vk::ApplicationInfo::default().application_name(c"gqa-isa").api_version(vk::API_VERSION_1_3);
        // SAFETY: a valid create info without layers or extensions.
        let instance =
            unsafe { entry.create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None) }.map_err(
                |result| match result {
                    // The loader found no driver at all.
                    vk::Result::ERROR_INCOMPATIBLE_DRIVER => {
                        IsaError::NoRadvDevice { family: std::env::var(FAMILY_VAR).ok(), devices: Vec::new() }
                    }
                    result => vulkan("vkCreateInstance")(result),
                },
            )?;
        match open_device(&instance) {
            Ok(opened) => Ok(Self {
                statistics: khr::pipeline_executable_properties::Device::new(&instance, &opened.device),
                device: opened.device,
                instance,
                _entry: entry,
                name: opened.name,
                target: opened.target,
                varying_subgroup_size: opened.varying_subgroup_size,
            }),
            Err(e) => {
                // SAFETY: nothing created from the instance outlives this call.
                unsafe { instance.destroy_instance(None) };
                Err(e)
            }
        }
    }
}

/// A logical device on the RADV physical device, with what the compiler needs to know of it.
struct Opened {
    device: ash::Device,
    name: String,
    target: SpirvTarget,
    varying_subgroup_size: bool,
}

/// Opens the first RADV device of `instance`.
fn open_device(instance: &ash::Instance) -> Result<Opened, IsaError> {
    // SAFETY (every call below): valid handles from this instance, structures built by ash.
    let physical = match unsafe { instance.enumerate_physical_devices() } {
        Ok(p) => p,
        Err(e) => return Err(vulkan("vkEnumeratePhysicalDevices")(e)),
    };
    let mut names = Vec::new();
    let mut radv = None;
    for &pd in &physical {
        let mut driver = vk::PhysicalDeviceDriverProperties::default();
        let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut driver);
        unsafe { instance.get_physical_device_properties2(pd, &mut props) };
        let name = text(&props.properties.device_name);
        let api = props.properties.api_version;
        if driver.driver_id == vk::DriverId::MESA_RADV && radv.is_none() {
            radv = Some((pd, name.clone(), api));
        }
        names.push(name);
    }
    let Some((pd, name, api)) = radv else {
        let family = std::env::var(FAMILY_VAR).ok();
        return Err(IsaError::NoRadvDevice { family, devices: names });
    };
    let extensions = match unsafe { instance.enumerate_device_extension_properties(pd) } {
        Ok(e) => e,
        Err(e) => return Err(vulkan("vkEnumerateDeviceExtensionProperties")(e)),
    };
    let has = |ext: &CStr| extensions.iter().any(|p| p.extension_name_as_c_str() == Ok(ext));
    if !has(khr::pipeline_executable_properties::NAME) {
        return Err(IsaError::NoStatistics { device: name });
    }
    let robustness2 = has(ash::ext::robustness2::NAME);

    // What the device offers.
    let mut v11 = vk::PhysicalDeviceVulkan11Features::default();
    let mut v12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut v13 = vk::PhysicalDeviceVulkan13Features::default();
    let mut r2 = vk::PhysicalDeviceRobustness2FeaturesEXT::default();
    let core = {
        let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut v11).push_next(&mut v12).push_next(&mut v13);
        if robustness2 {
            f2 = f2.push_next(&mut r2);
        }
        unsafe { instance.get_physical_device_features2(pd, &mut f2) };
        f2.features
    };
    let on = |b: vk::Bool32| b == vk::TRUE;

    // What the kernels and wgpu enable.
    let mut e11 = vk::PhysicalDeviceVulkan11Features::default()
        .storage_buffer16_bit_access(on(v11.storage_buffer16_bit_access))
        .uniform_and_storage_buffer16_bit_access(on(v11.uniform_and_storage_buffer16_bit_access))
        .storage_input_output16(on(v11.storage_input_output16));
    let mut e12 = vk::PhysicalDeviceVulkan12Features::default()
        .shader_float16(on(v12.shader_float16))
        .shader_int8(on(v12.shader_int8));
    let mut e13 = vk::PhysicalDeviceVulkan13Features::default()
        .robust_image_access(on(v13.robust_image_access))
        .subgroup_size_control(on(v13.subgroup_size_control))
        .shader_zero_initialize_workgroup_memory(on(v13.shader_zero_initialize_workgroup_memory))
        .shader_integer_dot_product(on(v13.shader_integer_dot_product));
    let mut e_r2 = vk::PhysicalDeviceRobustness2FeaturesEXT::default()
        .robust_buffer_access2(on(r2.robust_buffer_access2))
        .robust_image_access2(on(r2.robust_image_access2));
    let mut e_stats =
        vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default().pipeline_executable_info(true);
    let mut ext_names: Vec<*const c_char> = vec![khr::pipeline_executable_properties::NAME.as_ptr()];
    if robustness2 {
        ext_names.push(ash::ext::robustness2::NAME.as_ptr());
    }
    let enabled_core = vk::PhysicalDeviceFeatures::default().robust_buffer_access(on(core.robust_buffer_access));
    let queue_family = unsafe { instance.get_physical_device_queue_family_properties(pd) }
        .iter()
        .position(|q| q.queue_flags.contains(vk::QueueFlags::COMPUTE))
        .unwrap_or(0) as u32;
    let priorities = [1.0f32];
    let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(queue_family).queue_priorities(&priorities)];
    let mut features = vk::PhysicalDeviceFeatures2::default()
        .features(enabled_core)
        .push_next(&mut e11)
        .push_next(&mut e12)
        .push_next(&mut e13)
        .push_next(&mut e_stats);
    if robustness2 {
        features = features.push_next(&mut e_r2);
    }
    let info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queues)
        .enabled_extension_names(&ext_names)
        .push_next(&mut features);
    let device = match unsafe { instance.create_device(pd, &info, None) } {
        Ok(d) => d,
        Err(e) => return Err(vulkan("vkCreateDevice")(e)),
    };
    let target = SpirvTarget {
        vulkan_version: (vk::api_version_major(api), vk::api_version_minor(api)),
        robust_buffer_access2: robustness2 && on(r2.robust_buffer_access2),
        robust_image_access: if robustness2 { on(r2.robust_image_access2) } else { on(v13.robust_image_access) },
        storage_input_output_16: on(v11.storage_input_output16),
        shader_int8: on(v12.shader_int8),
        integer_dot_product: on(v13.shader_integer_dot_product),
    };
    Ok(Opened { device, name, target, varying_subgroup_size: on(v13.subgroup_size_control) })
}

impl Drop for RadvDevice {
    fn drop(&mut self) {
        // SAFETY: every object created from the device was destroyed by the call that made it.
        unsafe {
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}

//! Every WGSL kernel parses and validates with naga, matches the Rust-side declarations (params
//! layout, workgroup size, bindings) and translates to SPIR-V, MSL, HLSL and GLSL.
//!
//! The f16 kernels (`Kernel::needs_shader_f16`) validate with naga's `SHADER_FLOAT16` capability
//! (WebGPU's `shader-f16`), translate to HLSL with shader model 6.2 (the first with 16-bit types),
//! and are not translated to GLSL: naga's GLSL backend cannot emit f16, and wgpu's GL backend
//! never offers `SHADER_F16`, so those kernels never run there.
//!
//! The subgroup variants validate with naga's SUBGROUP capability (what wgpu grants a device with
//! `Features::SUBGROUP`) and translate to the targets that can express subgroup operations.

use gqa::core::{Access, Kernel, Params};
use gqa::core::{BlockAttention, BlockLanes, BlockRows, Lanes, MatmulKernel, Operands, kernels};
use gqa::gpu::shaders;
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

/// What wgpu's validator grants a kernel: WebGPU's defaults, plus, for the subgroup variants, the
/// SUBGROUP capability with the compute stage and the operation sets wgpu 30 grants with it (basic,
/// vote, arithmetic, ballot, shuffle, relative shuffle, quad: wgpu-hal's Vulkan backend offers
/// `Features::SUBGROUP` only on devices that support all of them).
fn validator(kernel: Kernel) -> Validator {
    let mut v = Validator::new(ValidationFlags::all(), capabilities(kernel));
    if kernel.needs_subgroups() {
        use SubgroupOperationSet as S;
        v.subgroup_stages(ShaderStages::COMPUTE).subgroup_operations(
            S::BASIC
                | S::VOTE
                | S::ARITHMETIC
                | S::BALLOT
                | S::SHUFFLE
                | S::SHUFFLE_RELATIVE
                | S::QUAD_FRAGMENT_COMPUTE,
        );
    }
    v
}

/// SPIR-V 1.3 for the subgroup variants (its GroupNonUniform capabilities need it, and wgpu's
/// Vulkan backend emits 1.3 where the device has subgroups), naga's default (1.0) otherwise.
fn spv_options(kernel: Kernel) -> naga::back::spv::Options<'static> {
    let lang_version = if kernel.needs_subgroups() { (1, 3) } else { (1, 0) };
    naga::back::spv::Options { lang_version, ..Default::default() }
}

/// WebGPU's default capabilities, plus f16 for the kernels that need `SHADER_F16` and subgroups for
/// those that need `SUBGROUP`.
fn capabilities(kernel: Kernel) -> Capabilities {
    let mut caps = Capabilities::default();
    if kernel.needs_shader_f16() {
        caps |= Capabilities::SHADER_FLOAT16;
    }
    if kernel.needs_subgroups() {
        caps |= Capabilities::SUBGROUP;
    }
    caps
}

fn module(kernel: Kernel) -> (naga::Module, naga::valid::ModuleInfo) {
    let src = shaders::source(kernel);
    let module =
        naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}: {}", kernel.name(), e.emit_to_string(&src)));
    let info =
        validator(kernel).validate(&module).unwrap_or_else(|e| panic!("{}: {}", kernel.name(), e.emit_to_string(&src)));
    (module, info)
}

/// Every file a kernel's spec names is in the executor's table of WGSL texts, and every text there
/// is some kernel's file or snippet or one of the roofline probes (whose texts are the table's).
#[test]
fn every_spec_names_files_the_executor_holds() {
    let mut used = std::collections::BTreeSet::new();
    for k in Kernel::ALL {
        let spec = k.spec();
        for name in spec.snippets.iter().chain([&spec.file]) {
            assert!(shaders::file(name).is_some(), "{}: {name} not in shaders::FILES", spec.name);
            used.insert(*name);
        }
    }
    for (name, text) in gqa::gpu::roofline::PROBES {
        assert_eq!(shaders::file(name), Some(text), "{name}");
        used.insert(name);
    }
    let held: std::collections::BTreeSet<&str> = shaders::FILES.iter().map(|(name, _)| *name).collect();
    assert_eq!(held, used);
}

#[test]
fn every_kernel_validates_with_webgpu_capabilities() {
    for k in Kernel::ALL.into_iter().filter(|k| !k.needs_subgroups()) {
        module(k);
    }
}

#[test]
fn f16_kernels_need_the_f16_capability_and_no_other_does() {
    // (The subgroup kernels need their own capability: see the next test.)
    for k in Kernel::ALL.into_iter().filter(|k| !k.needs_subgroups()) {
        let src = shaders::source(k);
        let m = naga::front::wgsl::parse_str(&src).unwrap();
        let plain = Validator::new(ValidationFlags::all(), Capabilities::default()).validate(&m);
        assert_eq!(plain.is_err(), k.needs_shader_f16(), "{}", k.name());
        assert_eq!(src.contains("enable f16;"), k.needs_shader_f16(), "{}", k.name());
    }
}

#[test]
fn subgroup_kernels_need_the_subgroup_capability_and_nothing_more() {
    let subgroup: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| k.needs_subgroups()).collect();
    assert_eq!(
        subgroup,
        [
            Kernel::Matmul(MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, true)),
            Kernel::Matmul(MatmulKernel::blocked(BlockRows::Sixteen, Operands::Texture, true)),
            Kernel::Matmul(MatmulKernel::blocked(BlockRows::Eight, Operands::Storage, true)),
            Kernel::Matmul(MatmulKernel::blocked(BlockRows::Eight, Operands::Texture, true)),
            Kernel::Softmax(Lanes::Subgroup),
            Kernel::BlockAttention(BlockAttention { operands: Operands::Storage, lanes: BlockLanes::SharedLoads }),
            Kernel::BlockAttention(BlockAttention { operands: Operands::Storage, lanes: BlockLanes::Subgroup }),
            Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::SharedLoads }),
            Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Subgroup }),
        ]
    );
    for k in subgroup {
        // Validates with SUBGROUP (compute stage, basic + arithmetic operations) ...
        module(k);
        // ... and is rejected without it: the declaration `needs_subgroups` is true to the WGSL.
        let src = shaders::source(k);
        let m = naga::front::wgsl::parse_str(&src).unwrap();
        let plain = Validator::new(ValidationFlags::all(), Capabilities::default()).validate(&m);
        assert!(plain.is_err(), "{} validated without the SUBGROUP capability", k.name());
    }
}

#[test]
fn params_struct_matches_rust_layout() {
    for k in Kernel::ALL {
        let (m, _) = module(k);
        let (_, ty) = m.types.iter().find(|(_, t)| t.name.as_deref() == Some("Params")).expect("Params declared");
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("Params is a struct") };
        assert_eq!(*span as usize, std::mem::size_of::<Params>(), "{}", k.name());
        let wgsl: Vec<(String, usize)> =
            members.iter().map(|mb| (mb.name.clone().unwrap_or_default(), mb.offset as usize)).collect();
        let rust: Vec<(String, usize)> = Params::FIELDS.iter().map(|(n, o)| (n.to_string(), *o)).collect();
        assert_eq!(wgsl, rust, "{}", k.name());
    }
}

#[test]
fn workgroup_size_and_bindings_match_the_declarations() {
    for k in Kernel::ALL {
        let (m, _) = module(k);
        let ep = m.entry_points.iter().find(|e| e.name == "main").expect("entry point main");
        assert_eq!(ep.workgroup_size, k.workgroup_size(), "{}", k.name());
        let mut bound: Vec<(u32, Access)> = m
            .global_variables
            .iter()
            .filter_map(|(_, g)| {
                let b = g.binding.as_ref()?;
                let access = match (g.space, &m.types[g.ty].inner) {
                    (naga::AddressSpace::Storage { access }, _) if access.contains(naga::StorageAccess::STORE) => {
                        Access::ReadWrite
                    }
                    (naga::AddressSpace::Storage { .. }, _) => Access::Read,
                    (
                        naga::AddressSpace::Handle,
                        naga::TypeInner::Image {
                            dim: naga::ImageDimension::D2,
                            arrayed: false,
                            class: naga::ImageClass::Storage { format: naga::StorageFormat::Rgba32Float, access },
                        },
                    ) if *access == naga::StorageAccess::LOAD => Access::Texture,
                    (
                        naga::AddressSpace::Handle,
                        naga::TypeInner::Image {
                            dim: naga::ImageDimension::D2,
                            arrayed: false,
                            class: naga::ImageClass::Storage { format: naga::StorageFormat::Rgba32Float, access },
                        },
                    ) if *access == naga::StorageAccess::STORE => Access::TextureWrite,
                    _ => return None,
                };
                Some((b.binding, access))
            })
            .collect();
        bound.sort_by_key(|s| s.0);
        let declared: Vec<(u32, Access)> = k.bindings().iter().enumerate().map(|(i, a)| (i as u32 + 1, *a)).collect();
        assert_eq!(bound, declared, "{}", k.name());
        let wg_bytes: u32 = m
            .global_variables
            .iter()
            .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
            .map(|(_, g)| m.types[g.ty].inner.size(m.to_ctx()))
            .sum();
        assert_eq!(wg_bytes, k.workgroup_memory_bytes(), "{}", k.name());
    }
}

/// The value of the module-scope `const NAME: u32` of a kernel's WGSL.
fn wgsl_u32_const(kernel: Kernel, name: &str) -> u32 {
    let (m, _) = module(kernel);
    let (_, c) = m
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{}: no const {name}", kernel.name()));
    match m.global_expressions[c.init] {
        naga::Expression::Literal(naga::Literal::U32(v)) => v,
        ref e => panic!("{}: const {name} is {e:?}", kernel.name()),
    }
}

/// The block kernels' item and key tiles, which the plan's grids and limits are computed from, are
/// the ones their WGSL declares.
#[test]
fn block_kernels_tiles_match_the_wgsl() {
    for k in [
        Kernel::BlockAttention(BlockAttention { operands: Operands::Storage, lanes: BlockLanes::Workgroup }),
        Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Workgroup }),
    ] {
        assert_eq!(wgsl_u32_const(k, "BLOCK") as usize, kernels::block::ITEMS);
        assert_eq!(wgsl_u32_const(k, "CHUNK") as usize, kernels::block::CHUNK_KEYS);
        assert_eq!(k.tile()[0] as usize, kernels::block::ITEMS);
    }
    let sub = Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Subgroup });
    assert_eq!(wgsl_u32_const(sub, "BLOCKS") as usize, kernels::block::SUBGROUP_BLOCKS);
    // Blocks of 8 items each.
    assert_eq!(sub.tile()[0] as usize, 8 * kernels::block::SUBGROUP_BLOCKS);
}

#[test]
fn translates_to_spirv_msl_hlsl_glsl() {
    use naga::back::{glsl, hlsl, msl, spv};
    for k in Kernel::ALL {
        let (m, info) = module(k);
        let name = k.name();
        let stage = naga::ShaderStage::Compute;
        let spv_words = spv::write_vec(
            &m,
            &info,
            &spv_options(k),
            Some(&spv::PipelineOptions { shader_stage: stage, entry_point: "main".into() }),
        )
        .unwrap_or_else(|e| panic!("{name} -> SPIR-V: {e}"));
        assert_eq!(spv_words[0], 0x0723_0203, "{name}: SPIR-V magic");

        let msl_opts = msl::Options { lang_version: (2, 1), ..Default::default() };
        let (msl_src, _) = msl::write_string(&m, &info, &msl_opts, &msl::PipelineOptions::default())
            .unwrap_or_else(|e| panic!("{name} -> MSL: {e}"));
        assert!(msl_src.contains("kernel void"), "{name}: MSL has a kernel");

        // f16 needs shader model 6.2 (the first with 16-bit types); wave intrinsics (HLSL's subgroup
        // operations) need 6.0: 5.1 can express neither.
        let models: &[hlsl::ShaderModel] = if k.needs_shader_f16() {
            &[hlsl::ShaderModel::V6_2]
        } else if k.needs_subgroups() {
            &[hlsl::ShaderModel::V6_0]
        } else {
            &[hlsl::ShaderModel::V5_1, hlsl::ShaderModel::V6_0]
        };
        for &model in models {
            let opts = hlsl::Options { shader_model: model, ..Default::default() };
            let pipeline = hlsl::PipelineOptions::default();
            let mut out = String::new();
            hlsl::Writer::new(&mut out, &opts, &pipeline)
                .write(&m, &info, None)
                .unwrap_or_else(|e| panic!("{name} -> HLSL {model:?}: {e}"));
            assert!(out.contains("[numthreads("), "{name}: HLSL has numthreads");
        }

        if k.needs_shader_f16() {
            continue; // No f16 in naga's GLSL backend (nor on wgpu's GL backend).
        }
        let opts = glsl::Options { version: glsl::Version::new_gles(310), ..Default::default() };
        let pipeline = glsl::PipelineOptions { shader_stage: stage, entry_point: "main".into(), multiview: None };
        let mut out = String::new();
        glsl::Writer::new(&mut out, &m, &info, &opts, &pipeline, naga::proc::BoundsCheckPolicies::default())
            .and_then(|mut w| w.write())
            .unwrap_or_else(|e| panic!("{name} -> GLSL ES 3.1: {e}"));
        assert!(out.contains("#version 310 es"), "{name}: GLSL version line");
    }
}

/// Runs an external tool (`tool` with `args`) and asserts that it succeeds. A missing tool fails
/// the test (it names the Debian `package`) unless `GQA_SKIP_EXTERNAL_VALIDATORS=1` is set; then it
/// returns false.
fn run_external(tool: &str, package: &str, args: &[&std::ffi::OsStr], what: &str) -> bool {
    match std::process::Command::new(tool).args(args).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{tool} failed on {what}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(e) if std::env::var("GQA_SKIP_EXTERNAL_VALIDATORS").as_deref() == Ok("1") => {
            eprintln!("GQA_SKIP_EXTERNAL_VALIDATORS=1: not running {tool} ({e})");
            false
        }
        Err(e) => {
            panic!("{tool} not runnable ({e}): install Debian's {package}, or set GQA_SKIP_EXTERNAL_VALIDATORS=1")
        }
    }
}

/// Runs an external validator on `bytes` written to a temporary file named `name` ([`run_external`]).
fn external_validator(tool: &str, package: &str, args: &[&str], name: &str, bytes: &[u8]) {
    let dir = std::env::temp_dir().join(format!("gqa-shaders-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.push(path.as_os_str());
    run_external(tool, package, &all, name);
}

#[test]
fn spirv_val_and_glslang_accept_the_translations() {
    use naga::back::{glsl, spv};
    for k in Kernel::ALL {
        let (m, info) = module(k);
        let stem = k.name();
        let words = spv::write_vec(
            &m,
            &info,
            &spv_options(k),
            Some(&spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() }),
        )
        .unwrap();
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        external_validator("spirv-val", "spirv-tools", &["--target-env", "vulkan1.1"], &format!("{stem}.spv"), &bytes);
        if k.needs_shader_f16() {
            continue; // No f16 in naga's GLSL backend (nor on wgpu's GL backend).
        }

        let opts = glsl::Options { version: glsl::Version::new_gles(310), ..Default::default() };
        let pipeline = glsl::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: "main".into(),
            multiview: None,
        };
        let mut out = String::new();
        glsl::Writer::new(&mut out, &m, &info, &opts, &pipeline, naga::proc::BoundsCheckPolicies::default())
            .and_then(|mut w| w.write())
            .unwrap();
        external_validator("glslangValidator", "glslang-tools", &[], &format!("{stem}.comp"), out.as_bytes());
    }
}

#[test]
fn roofline_probes_validate_and_translate() {
    use naga::back::{hlsl, msl, spv};
    for (name, src) in gqa::gpu::roofline::PROBES {
        let m = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        let info = Validator::new(ValidationFlags::all(), Capabilities::default())
            .validate(&m)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        let stage = naga::ShaderStage::Compute;
        spv::write_vec(
            &m,
            &info,
            &spv::Options::default(),
            Some(&spv::PipelineOptions { shader_stage: stage, entry_point: "main".into() }),
        )
        .unwrap_or_else(|e| panic!("{name} -> SPIR-V: {e}"));
        msl::write_string(
            &m,
            &info,
            &msl::Options { lang_version: (2, 1), ..Default::default() },
            &msl::PipelineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name} -> MSL: {e}"));
        let mut out = String::new();
        hlsl::Writer::new(&mut out, &hlsl::Options::default(), &hlsl::PipelineOptions::default())
            .write(&m, &info, None)
            .unwrap_or_else(|e| panic!("{name} -> HLSL: {e}"));
    }
}

/// The generated matmuls (`tools/gen_matmul_rb16.py`) are what their generator writes: it runs into
/// a temporary directory, every file it writes must equal the committed one byte for byte, and every
/// committed shader marked as generated must be among them (edit the generator, then run it from
/// the repository root). Needs `python3` (Debian's `python3`; see [`run_external`]).
#[test]
fn generated_shaders_match_their_generator() {
    const MARK: &str = "// GENERATED by tools/gen_matmul_rb16.py";
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("gqa-generated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = root.join("tools/gen_matmul_rb16.py");
    if !run_external("python3", "python3", &[script.as_os_str(), dir.as_os_str()], "tools/gen_matmul_rb16.py") {
        return;
    }
    let names = |d: &std::path::Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
    };
    let written = names(&dir);
    assert!(!written.is_empty(), "the generator wrote nothing");
    for name in names(&root.join("shaders")).iter().filter(|n| n.ends_with(".wgsl")) {
        let text = std::fs::read_to_string(root.join("shaders").join(name)).unwrap();
        assert!(
            !text.starts_with(MARK) || written.contains(name),
            "shaders/{name} is marked generated but the generator no longer writes it"
        );
    }
    for name in &written {
        let fresh = std::fs::read_to_string(dir.join(name)).unwrap();
        let committed = std::fs::read_to_string(root.join("shaders").join(name))
            .unwrap_or_else(|e| panic!("the generator writes {name}, which shaders/ lacks: {e}"));
        if let Some((line, (f, c))) = fresh.lines().zip(committed.lines()).enumerate().find(|(_, (f, c))| f != c) {
            panic!(
                "shaders/{name} differs from what tools/gen_matmul_rb16.py writes, first at line {}:\n  generated: {f}\n  committed: {c}\n(edit the generator and run it from the repository root)",
                line + 1
            );
        }
        assert!(
            fresh == committed,
            "shaders/{name} differs from what tools/gen_matmul_rb16.py writes in length ({} against {} bytes)",
            fresh.len(),
            committed.len()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

//! With the `emulator` feature, compiles the kernel sources with the host's C++ compiler into
//! a library the CPU stand-in for the GPU runs (src/emulator.rs). Without it, does nothing:
//! the kernels are compiled at run time by NVRTC.

fn main() {
    #[cfg(feature = "emulator")]
    emulator::build();
}

#[cfg(feature = "emulator")]
mod emulator {
    use std::path::{Path, PathBuf};
    use std::{env, fs};

    /// Text in front of a family's source in its translation unit; the kernel names are read
    /// from the preprocessed text after it.
    const MARKER: &str = "emu_kernel_sources_begin";

    pub fn build() {
        let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
        let out = PathBuf::from(env::var("OUT_DIR").unwrap());
        let kernels = root.join("kernels");
        let emulator = root.join("emulator");
        println!("cargo:rerun-if-changed={}", kernels.display());
        println!("cargo:rerun-if-changed={}", emulator.display());

        let common = fs::read_to_string(kernels.join("common.cuh")).unwrap();
        let mut families = vec![];
        for entry in fs::read_dir(&kernels).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "cu") {
                families.push(path);
            }
        }
        families.sort();
        // Kernels that test the emulator itself.
        families.push(emulator.join("selftest.cu"));

        let mut units = vec![emulator.join("runtime.cpp")];
        let mut lookups = vec![];
        for source in &families {
            let family = source.file_stem().unwrap().to_str().unwrap().to_string();
            let unit = out.join(format!("emu_{family}.cpp"));
            // `extern __shared__` is the dynamic shared memory, a global of runtime.cpp; plain
            // `__shared__` becomes a static.
            let body = fs::read_to_string(source)
                .unwrap()
                .replace("extern __shared__", "extern");
            let text = format!(
                "#include \"cuda_emulator.h\"\nnamespace {MARKER} {{}}\n{common}\n{body}\n"
            );
            fs::write(&unit, &text).unwrap();
            let names = kernel_names(&compiler(&emulator), &unit);
            assert!(!names.is_empty(), "{} defines no kernels", source.display());
            let table: Vec<String> = names
                .iter()
                .map(|n| format!("    {{\"{n}\", [](void** p) {{ emu::call(&{n}, p); }}}},"))
                .collect();
            let lookup = format!("emu_find_{family}");
            fs::write(
                &unit,
                format!(
                    "{text}\nextern \"C\" emu::Entry {lookup}(const char* name) {{\n    \
                     static const emu::Kernel table[] = {{\n{}\n    }};\n    \
                     for (const emu::Kernel& k : table) {{\n        \
                     if (std::strcmp(k.name, name) == 0) return k.entry;\n    }}\n    \
                     return nullptr;\n}}\n",
                    table.join("\n")
                ),
            )
            .unwrap();
            units.push(unit);
            lookups.push(lookup);
        }

        let registry = out.join("emu_registry.cpp");
        let declarations: String = lookups
            .iter()
            .map(|l| format!("extern \"C\" emu::Entry {l}(const char* name);\n"))
            .collect();
        let searches: String = lookups
            .iter()
            .map(|l| format!("    if (emu::Entry e = {l}(name)) return e;\n"))
            .collect();
        fs::write(
            &registry,
            format!(
                "#include \"cuda_emulator.h\"\n{declarations}\
                 extern \"C\" emu::Entry emu_find_kernel(const char* name) {{\n{searches}    \
                 return nullptr;\n}}\n"
            ),
        )
        .unwrap();
        units.push(registry);

        compiler(&emulator).files(&units).compile("cuda_emulator");
    }

    /// The C++ build of the emulator: optimized even in debug builds, since every CUDA thread
    /// runs on the CPU.
    fn compiler(include: &Path) -> cc::Build {
        let mut b = cc::Build::new();
        b.cpp(true)
            .std("c++17")
            .include(include)
            .opt_level(2)
            .warnings(false);
        b
    }

    /// The names of the `extern "C"` functions the unit defines after the marker, read from
    /// its preprocessed text (the kernels' names are built by macros).
    fn kernel_names(build: &cc::Build, unit: &Path) -> Vec<String> {
        let expanded = build.clone().file(unit).expand();
        let text = String::from_utf8_lossy(&expanded);
        let after = &text[text.find(MARKER).expect("marker survives preprocessing")..];
        let mut names = vec![];
        let mut rest = after;
        while let Some(at) = rest.find("extern \"C\"") {
            rest = rest[at + "extern \"C\"".len()..].trim_start();
            if let Some(decl) = rest.strip_prefix("void") {
                let decl = decl.trim_start();
                let end = decl
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(decl.len());
                names.push(decl[..end].to_string());
            }
        }
        names
    }
}

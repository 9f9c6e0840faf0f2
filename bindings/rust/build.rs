//! Finds libevsendfile (and libevent_core), tells cargo how to link them, and
//! runs the C layout probe whose output `tests/layout.rs` checks.
//!
//! Where the library is looked for, first match wins:
//!  1. `EVSENDFILE_LIB_DIR` (e.g. a CMake build tree), with the header from
//!     `EVSENDFILE_INCLUDE_DIR`, default `../../include` next to this crate;
//!  2. `pkg-config evsendfile` (an installed library);
//!  3. `../../build` next to this crate, if it holds `libevsendfile.so`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Library {
    lib_dirs: Vec<PathBuf>,
    libs: Vec<String>,
    include_dir: Option<PathBuf>,
}

fn main() {
    for var in ["EVSENDFILE_LIB_DIR", "EVSENDFILE_INCLUDE_DIR", "PKG_CONFIG_PATH", "CC"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=probe/layout.c");
    println!("cargo:rustc-check-cfg=cfg(evsendfile_layout_probed)");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let lib = locate(&crate_dir);
    for dir in &lib.lib_dirs {
        println!("cargo:rustc-link-search=native={}", dir.display());
        // Lets `cargo test` binaries find the shared library without
        // LD_LIBRARY_PATH (applies to this package's own tests/examples).
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    // For dependent crates' build scripts (DEP_EVSENDFILE_LIB_DIRS), e.g. to set the same rpath.
    let dirs: Vec<String> = lib.lib_dirs.iter().map(|d| d.display().to_string()).collect();
    println!("cargo:lib_dirs={}", dirs.join(":"));
    for name in &lib.libs {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
    let header = lib.include_dir.as_ref().map(|d| d.join("evsendfile.h"));
    if let Some(h) = &header {
        println!("cargo:rerun-if-changed={}", h.display());
    }
    probe_layout(&crate_dir, lib.include_dir.as_deref());
}

fn locate(crate_dir: &Path) -> Library {
    let default_include = crate_dir.join("../../include");
    if let Ok(dir) = env::var("EVSENDFILE_LIB_DIR") {
        let dir = PathBuf::from(dir);
        if !has_library(&dir) {
            fail(&format!("EVSENDFILE_LIB_DIR={} holds no libevsendfile.so", dir.display()));
        }
        let include = env::var("EVSENDFILE_INCLUDE_DIR").map(PathBuf::from).unwrap_or(default_include);
        return with_libevent(dir, include);
    }
    if let Some(lib) = pkg_config("evsendfile") {
        return lib;
    }
    let dir = crate_dir.join("../../build");
    if has_library(&dir) {
        return with_libevent(dir, default_include);
    }
    fail(
        "libevsendfile not found. Either\n  \
         - set EVSENDFILE_LIB_DIR to the directory holding libevsendfile.so \
         (a CMake build tree works, e.g. EVSENDFILE_LIB_DIR=/path/to/evsendfile/build),\n    \
         and EVSENDFILE_INCLUDE_DIR to the directory holding evsendfile.h if it is not ../../include;\n  \
         - or install the library so that `pkg-config --libs evsendfile` finds it;\n  \
         - or build it in ../../build (cmake -S ../.. -B ../../build && cmake --build ../../build).",
    )
}

fn has_library(dir: &Path) -> bool {
    dir.join("libevsendfile.so").exists() || dir.join("libevsendfile.dylib").exists()
}

fn with_libevent(dir: PathBuf, include: PathBuf) -> Library {
    let include = include.canonicalize().unwrap_or(include);
    let dir = dir.canonicalize().unwrap_or(dir);
    let mut lib = Library { lib_dirs: vec![dir], libs: vec!["evsendfile".into()], include_dir: Some(include) };
    match pkg_config("libevent_core") {
        Some(ev) => {
            lib.lib_dirs.extend(ev.lib_dirs);
            lib.libs.extend(ev.libs);
        }
        None => lib.libs.push("event_core".into()),
    }
    lib
}

/// `pkg-config --libs --cflags NAME`, run as a command; None when it fails.
fn pkg_config(name: &str) -> Option<Library> {
    let out = Command::new("pkg-config").args(["--libs", "--cflags", name]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lib = Library { lib_dirs: Vec::new(), libs: Vec::new(), include_dir: None };
    for token in text.split_whitespace() {
        if let Some(d) = token.strip_prefix("-L") {
            lib.lib_dirs.push(PathBuf::from(d));
        } else if let Some(l) = token.strip_prefix("-l") {
            lib.libs.push(l.to_string());
        } else if let Some(i) = token.strip_prefix("-I") {
            lib.include_dir.get_or_insert_with(|| PathBuf::from(i));
        }
    }
    Some(lib)
}

/// Compiles and runs probe/layout.c with the system C compiler; its output
/// (Rust constants) lands in $OUT_DIR/c_layout.rs for tests/layout.rs.
fn probe_layout(crate_dir: &Path, include_dir: Option<&Path>) {
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        println!("cargo:warning=cross-compiling: the C layout probe is skipped");
        return;
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let exe = out_dir.join("layout_probe");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(&cc);
    if let Some(dir) = include_dir {
        cmd.arg("-I").arg(dir);
    }
    cmd.arg(crate_dir.join("probe/layout.c")).arg("-o").arg(&exe);
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("compiling probe/layout.c with `{cc}` failed ({s}); is evsendfile.h in {include_dir:?}?")),
        Err(e) => fail(&format!("cannot run the C compiler `{cc}` (set CC): {e}")),
    }
    let out = Command::new(&exe).output().unwrap_or_else(|e| fail(&format!("running the layout probe: {e}")));
    if !out.status.success() {
        fail("the layout probe failed");
    }
    std::fs::write(out_dir.join("c_layout.rs"), out.stdout).unwrap();
    println!("cargo:rustc-cfg=evsendfile_layout_probed");
}

fn fail(msg: &str) -> ! {
    eprintln!("\nevsendfile build.rs: {msg}\n");
    std::process::exit(1);
}

//! Sets an rpath to the directory holding libevsendfile (found by the
//! `evsendfile` crate's build script), so this crate's tests and examples run
//! without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_EVSENDFILE_LIB_DIRS");
    for dir in std::env::var("DEP_EVSENDFILE_LIB_DIRS").unwrap_or_default().split(':').filter(|d| !d.is_empty()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}

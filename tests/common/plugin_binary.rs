//! Where the test plugin (examples/age-plugin-kuvert-test.rs) is: cargo
//! builds it beside the test binaries, in the same profile directory.
//! Shared by tests/plugin.rs and cli/tests/plugin.rs through `#[path]`.

use std::path::{Path, PathBuf};

/// The test plugin as cargo built it, beside this test's own binary.
pub fn plugin_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/PROFILE/deps");
    let binary = profile.join("examples").join(format!(
        "age-plugin-kuvert-test{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        binary.is_file(),
        "{} is missing: `cargo test --workspace` builds it, or `cargo build --release -p kuvert --example age-plugin-kuvert-test`",
        binary.display()
    );
    binary
}

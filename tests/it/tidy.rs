//! Architecture rules made mechanical (STYLE habit 6): what must stay absent.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry"))
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without its comment lines: docs may say what the code does not use.
fn code_of(file: &Path) -> String {
    fs::read_to_string(file)
        .expect("read")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn vm_receipts_uses_no_runtime_network_or_os_entropy() {
    let manifest = fs::read_to_string(workspace().join("receipts/Cargo.toml")).expect("manifest");
    let deps = manifest
        .split("[dev-dependencies]")
        .next()
        .unwrap_or_default();
    for banned in [
        "tokio",
        "libp2p",
        "hickory",
        "axum",
        "rustls",
        "redb",
        "getrandom",
        "rand",
    ] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(banned)),
            "vm-receipts must not depend on {banned}"
        );
    }
    let mut files = Vec::new();
    rust_files(&workspace().join("receipts/src"), &mut files);
    for file in files {
        let text = code_of(&file);
        for banned in [
            "tokio",
            "std::net",
            "SystemTime",
            "Instant::now",
            "OsRng",
            "thread_rng",
        ] {
            assert!(!text.contains(banned), "{} names {banned}", file.display());
        }
    }
}

#[test]
fn the_engine_is_sans_io() {
    let mut files = Vec::new();
    rust_files(&workspace().join("src/engine"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let code = code_of(&file);
        for banned in [
            "tokio",
            "std::fs",
            "std::net",
            "std::thread",
            "SystemTime",
            "Instant",
            "getrandom",
            // Randomness comes in as a seed (a seeded ChaCha20): no OS or thread RNG.
            "rand::rng",
            "thread_rng",
            "OsRng",
            "SysRng",
            "from_os_rng",
            "clock::",
            // Scroll files are the driver's (`federation_log`), not the engine's.
            "scroll::",
            "std::io",
        ] {
            assert!(
                !code.contains(banned),
                "{} names {banned}: the engine is sans-IO",
                file.display()
            );
        }
    }
}

#[test]
fn only_the_clock_module_may_read_the_os_clock_or_entropy() {
    let root = workspace();
    let mut files = Vec::new();
    for dir in [
        "src",
        "receipts/src",
        "storage/src",
        "network/src",
        "simnet/src",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    let clock = root.join("src/clock.rs");
    for file in files {
        let text = fs::read_to_string(&file).expect("read");
        let escapes = text.contains("allow(clippy::disallowed_methods)")
            || text.contains("allow(clippy::disallowed_types)");
        assert!(
            !escapes || file == clock,
            "{} lifts the clock/RNG ban; only src/clock.rs may",
            file.display()
        );
    }
    let clippy = fs::read_to_string(root.join("clippy.toml")).expect("clippy.toml");
    for banned in [
        "std::time::SystemTime::now",
        "std::time::Instant::now",
        "rand::rng",
        "getrandom::fill",
    ] {
        assert!(
            clippy.contains(banned),
            "clippy.toml no longer bans {banned}"
        );
    }
}

/// Issue 14: the witness protocol's decisions live in one sans-IO core; no file of it
/// touches the network, files, clocks or OS entropy (randomness arrives as a seed).
#[test]
fn the_witness_core_is_sans_io() {
    let root = workspace().join("src/witness");
    for name in [
        "core/mod.rs",
        "core/check.rs",
        "cycle.rs",
        "mod.rs",
        "evidence.rs",
    ] {
        let file = root.join(name);
        let code = code_of(&file);
        for banned in [
            "tokio",
            "std::fs",
            "std::net",
            "std::thread",
            "SystemTime",
            "Instant",
            "getrandom",
            "rand::rng",
            "thread_rng",
            "OsRng",
            "SysRng",
            "from_os_rng",
            "clock::",
            "std::io",
        ] {
            assert!(
                !code.contains(banned),
                "{} names {banned}: the witness core is sans-IO",
                file.display()
            );
        }
    }
}

/// Issue 14: one copy of the protocol. The checks and the root comparison are called from
/// the witness core alone; the node and the simulator drive the core.
#[test]
fn witness_checks_and_root_comparisons_are_made_in_the_core_alone() {
    let root = workspace();
    let core = root.join("src/witness/core");
    let mut files = Vec::new();
    for dir in ["src", "simnet/src", "network/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut callers = Vec::new();
    for file in files {
        let code = code_of(&file);
        let calls = code
            .match_indices("check(&CheckInput")
            .chain(code.match_indices("compare_roots("))
            .filter(|(i, _)| !code[..*i].ends_with("fn "))
            .count();
        if calls > 0 && !file.starts_with(&core) {
            callers.push(file.display().to_string());
        }
    }
    assert!(callers.is_empty(), "called outside the core: {callers:?}");
    let (check, compare) = (
        code_of(&core.join("check.rs")),
        code_of(&core.join("mod.rs")),
    );
    assert!(check.contains("witness::check(&CheckInput") && compare.contains("compare_roots("));
}

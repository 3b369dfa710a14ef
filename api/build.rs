//! Embeds the playground bundle (`playground/dist`, built by `deploy/playground.sh`) when it
//! is there; a fresh clone without it still compiles, and GET /graphql then says how to
//! build it.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=playground/dist");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let dist = Path::new(&manifest).join("playground").join("dist");
    let js = dist.join("playground.js");
    let css = dist.join("playground.css");
    let code = match (std::fs::read(&js), std::fs::read(&css)) {
        (Ok(j), Ok(c)) => format!(
            "pub const BUNDLED: bool = true;\npub const JS: &[u8] = include_bytes!({js:?});\npub const CSS: &[u8] = include_bytes!({css:?});\npub const VERSION: &str = \"{:016x}\";\n",
            fnv(&j) ^ fnv(&c).rotate_left(1)
        ),
        _ => "pub const BUNDLED: bool = false;\npub const JS: &[u8] = b\"\";\npub const CSS: &[u8] = b\"\";\npub const VERSION: &str = \"none\";\n"
            .to_owned(),
    };
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("playground_assets.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
    }
}

/// A content hash for cache busting (FNV-1a, 64 bits).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

//! `uniffi-bindgen generate --library target/debug/libwuye_mobile.so --language python --out-dir …`

fn main() {
    uniffi::uniffi_bindgen_main()
}

//! The image captcha resists plain OCR: Tesseract (Debian's `tesseract-ocr`, which
//! deploy/test.sh installs), told the exact alphabet and that the image is one line of
//! text, reads fewer than 2 % of 200 fresh captchas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;

const RUNS: usize = 200;

#[test]
fn tesseract_reads_fewer_than_two_percent() {
    let dir = std::env::temp_dir().join(format!("wuye-captcha-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut solved = 0;
    for n in 0..RUNS {
        let (answer, b64) = wuye_api::auth::captcha::generate().unwrap();
        let png = dir.join(format!("{n}.png"));
        std::fs::write(&png, base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
        let out = std::process::Command::new("tesseract")
            .arg(&png)
            .arg("stdout")
            .args(["--psm", "7", "-c"])
            .arg(format!("tessedit_char_whitelist={}", wuye_api::auth::captcha::ALPHABET))
            .output()
            .expect("tesseract-ocr is installed (deploy/test.sh installs it)");
        let read: String = String::from_utf8_lossy(&out.stdout).chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if read.eq_ignore_ascii_case(&answer) {
            solved += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("tesseract solved {solved} of {RUNS} captchas");
    assert!(solved * 50 < RUNS, "tesseract solved {solved} of {RUNS} (must stay under 2 %)");
}

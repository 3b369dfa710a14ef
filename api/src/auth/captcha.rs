//! 图形验证码: a PNG of four digits with noise. Answers live in Redis for a short
//! time and are deleted on the first check, right or wrong.

use base64::Engine;
use rand::Rng;

const W: usize = 120;
const H: usize = 40;

/// 5×7 glyphs for 0-9, one row of five bits per byte.
const GLYPHS: [[u8; 7]; 10] = [
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
];

/// A new challenge: the answer and the PNG as base64.
pub fn generate() -> Result<(String, String), png::EncodingError> {
    let mut rng = rand::rng();
    let answer: String = (0..4).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
    let mut px = vec![235u8; W * H];
    for _ in 0..(W * H / 8) {
        let i = rng.random_range(0..px.len());
        px[i] = rng.random_range(120..220);
    }
    for (n, ch) in answer.bytes().enumerate() {
        let glyph = &GLYPHS[usize::from(ch - b'0')];
        let scale = 4;
        let x0 = 8 + n * 27 + rng.random_range(0..6);
        let y0 = 3 + rng.random_range(0..6);
        let shade: u8 = rng.random_range(10..70);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..5 {
                if bits & (0b10000 >> col) == 0 {
                    continue;
                }
                // a little shear per row so the glyphs are not pixel-identical templates
                let shear = row / 3;
                for dy in 0..scale {
                    for dx in 0..scale {
                        let x = x0 + col * scale + dx + shear;
                        let y = y0 + row * scale + dy;
                        if x < W && y < H {
                            px[y * W + x] = shade;
                        }
                    }
                }
            }
        }
    }
    for _ in 0..3 {
        let (mut y, dy) = (rng.random_range(0..H as i32), rng.random_range(-1..=1));
        for x in 0..W {
            if x % 4 == 0 {
                y = (y + dy).clamp(0, H as i32 - 1);
            }
            px[y as usize * W + x] = 60;
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, W as u32, H as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&px)?;
    }
    Ok((answer, base64::engine::general_purpose::STANDARD.encode(out)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn makes_a_png() {
        let (answer, b64) = super::generate().unwrap();
        assert_eq!(answer.len(), 4);
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
    }
}

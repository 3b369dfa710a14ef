//! 打印 PDF documents with Chinese text (printed bills, receipts).
//!
//! One TrueType font with CJK coverage (WenQuanYi Micro Hei by default, installed by the
//! scripts and the Dockerfile) is loaded at startup. Each document embeds it as a CID
//! font (Identity-H) subset to the glyphs its pages use, with a ToUnicode map, so the
//! text can be searched and copied (`pdftotext` reads it back). Pages are A4, points as
//! units, the origin at the bottom left; each page's content is compressed as it is
//! finished, so a document of many pages is built a page at a time.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// A4 in points.
pub const PAGE_WIDTH: f32 = 595.28;
pub const PAGE_HEIGHT: f32 = 841.89;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("cannot read the font {path}: {reason}")]
    Font { path: String, reason: String },
    #[error("cannot subset the font: {0}")]
    Subset(String),
}

/// A TrueType face loaded once and shared by every document.
pub struct Font {
    data: Vec<u8>,
    index: u32,
    units: f32,
    ascent: f32,
    descent: f32,
    cap_height: f32,
    bbox: [f32; 4],
    /// the PostScript name, without spaces
    name: String,
}

impl Font {
    /// Reads a `.ttf` (or face `index` of a `.ttc`); it must have TrueType outlines and map
    /// the Chinese characters documents print.
    pub fn load(path: &Path, index: u32) -> Result<Arc<Font>, PdfError> {
        let bad = |reason: String| PdfError::Font { path: path.display().to_string(), reason };
        let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        Self::from_bytes(data, index).map_err(bad)
    }

    fn from_bytes(data: Vec<u8>, index: u32) -> Result<Arc<Font>, String> {
        let face = ttf_parser::Face::parse(&data, index).map_err(|e| e.to_string())?;
        if face.tables().glyf.is_none() {
            return Err("not a TrueType (glyf) font".into());
        }
        if "账单金额0元".chars().any(|c| face.glyph_index(c).is_none()) {
            return Err("the font has no Chinese glyphs".into());
        }
        let units = f32::from(face.units_per_em());
        let scale = 1000.0 / units;
        let b = face.global_bounding_box();
        let name = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|n| n.to_string())
            .unwrap_or_else(|| "CJKFont".into())
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let ascent = f32::from(face.ascender()) * scale;
        let descent = f32::from(face.descender()) * scale;
        let cap_height = face.capital_height().map(|h| f32::from(h) * scale).unwrap_or(700.0);
        let bbox = [b.x_min, b.y_min, b.x_max, b.y_max].map(|v| f32::from(v) * scale);
        // the face borrows `data`: read everything first, then keep the bytes
        Ok(Arc::new(Font { data, index, units, ascent, descent, cap_height, bbox, name }))
    }
}

/// A glyph as a document uses it: its id in the subset and its advance (font units).
#[derive(Clone, Copy)]
struct Glyph {
    cid: u16,
    advance: u16,
}

/// A document being built.
pub struct Doc {
    font: Arc<Font>,
    title: String,
    remap: subsetter::GlyphRemapper,
    glyphs: HashMap<char, Glyph>,
    /// subset id → (character, advance): widths and the ToUnicode map
    used: BTreeMap<u16, (char, u16)>,
    /// each page's compressed content
    pages: Vec<Vec<u8>>,
}

impl Doc {
    pub fn new(font: Arc<Font>, title: &str) -> Doc {
        Doc {
            font,
            title: title.to_owned(),
            remap: subsetter::GlyphRemapper::new(),
            glyphs: HashMap::new(),
            used: BTreeMap::new(),
            pages: Vec::new(),
        }
    }

    pub fn pages(&self) -> usize {
        self.pages.len()
    }

    /// A new page; `Page::finish` adds it.
    pub fn page(&mut self) -> Page<'_> {
        Page { doc: self, content: Content::new() }
    }

    fn glyph(&mut self, c: char) -> Glyph {
        if let Some(g) = self.glyphs.get(&c) {
            return *g;
        }
        // parsed again only for a character not seen before in this document
        let (gid, advance) = match ttf_parser::Face::parse(&self.font.data, self.font.index) {
            Ok(face) => {
                let gid = face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
                (gid.0, face.glyph_hor_advance(gid).unwrap_or(0))
            }
            Err(_) => (0, 0),
        };
        let g = Glyph { cid: self.remap.remap(gid), advance };
        if gid != 0 {
            self.used.entry(g.cid).or_insert((c, advance));
        }
        self.glyphs.insert(c, g);
        g
    }

    /// The width of a text at a size, in points.
    pub fn width(&mut self, text: &str, size: f32) -> f32 {
        let units = self.font.units;
        text.chars().map(|c| f32::from(self.glyph(c).advance)).sum::<f32>() * size / units
    }

    /// The PDF file: the font subset to the glyphs used, embedded once.
    pub fn finish(self) -> Result<Vec<u8>, PdfError> {
        let subset = subsetter::subset(&self.font.data, self.font.index, &self.remap)
            .map_err(|e| PdfError::Subset(e.to_string()))?;
        let mut next = Ref::new(1);
        let catalog = next.bump();
        let pages_id = next.bump();
        let info = next.bump();
        let type0 = next.bump();
        let cid = next.bump();
        let descriptor = next.bump();
        let cmap_id = next.bump();
        let file = next.bump();
        let ids: Vec<(Ref, Ref)> = self.pages.iter().map(|_| (next.bump(), next.bump())).collect();
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(pages_id);
        pdf.pages(pages_id).kids(ids.iter().map(|(p, _)| *p)).count(ids.len() as i32);
        pdf.document_info(info).title(TextStr(&self.title)).producer(TextStr("wuye"));
        for ((page, content), data) in ids.iter().zip(&self.pages) {
            let mut p = pdf.page(*page);
            p.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT)).parent(pages_id).contents(*content);
            p.resources().fonts().pair(Name(b"F1"), type0);
            p.finish();
            pdf.stream(*content, data).filter(Filter::FlateDecode);
        }
        // a subset's name starts with a tag of six capitals naming the subset
        let tag: String = {
            let mut h: u32 = 2_166_136_261;
            for (cid, (c, _)) in &self.used {
                h = (h ^ (u32::from(*cid) << 16 | (*c as u32 & 0xffff))).wrapping_mul(16_777_619);
            }
            (0..6).map(|i| char::from(b'A' + ((h >> (i * 5)) % 26) as u8)).collect()
        };
        let base = format!("{tag}+{}", self.font.name);
        let system = || SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };
        pdf.type0_font(type0)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(cmap_id);
        let scale = 1000.0 / self.font.units;
        let mut c = pdf.cid_font(cid);
        c.subtype(CidFontType::Type2)
            .base_font(Name(base.as_bytes()))
            .system_info(system())
            .font_descriptor(descriptor)
            .cid_to_gid_map_predefined(Name(b"Identity"))
            .default_width(0.0);
        {
            let mut w = c.widths();
            for (cid, (_, advance)) in &self.used {
                w.consecutive(*cid, [f32::from(*advance) * scale]);
            }
        }
        c.finish();
        let f = &self.font;
        pdf.font_descriptor(descriptor)
            .name(Name(base.as_bytes()))
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(f.bbox[0], f.bbox[1], f.bbox[2], f.bbox[3]))
            .italic_angle(0.0)
            .ascent(f.ascent)
            .descent(f.descent)
            .cap_height(f.cap_height)
            .stem_v(80.0)
            .font_file2(file);
        let mut cmap = UnicodeCmap::new(Name(b"Wuye-UTF16"), system());
        for (cid, (c, _)) in &self.used {
            cmap.pair(*cid, *c);
        }
        let cmap = cmap.finish();
        pdf.stream(cmap_id, cmap.as_slice());
        let packed = deflate(&subset);
        pdf.stream(file, &packed).filter(Filter::FlateDecode).pair(Name(b"Length1"), subset.len() as i32);
        Ok(pdf.finish())
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// Where text sits on a line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
    Center,
}

/// One page being drawn.
pub struct Page<'d> {
    doc: &'d mut Doc,
    content: Content,
}

impl Page<'_> {
    /// Text at (x, y) (the baseline), aligned on x.
    pub fn text(&mut self, x: f32, y: f32, size: f32, align: Align, text: &str) -> &mut Self {
        if text.is_empty() {
            return self;
        }
        let mut codes = Vec::with_capacity(text.len() * 2);
        let mut width = 0.0;
        for c in text.chars() {
            let g = self.doc.glyph(c);
            codes.extend_from_slice(&g.cid.to_be_bytes());
            width += f32::from(g.advance);
        }
        let width = width * size / self.doc.font.units;
        let x = match align {
            Align::Left => x,
            Align::Right => x - width,
            Align::Center => x - width / 2.0,
        };
        self.content.begin_text().set_font(Name(b"F1"), size).next_line(x, y).show(Str(&codes)).end_text();
        self
    }

    /// A straight line.
    pub fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32) -> &mut Self {
        self.content.set_line_width(width).move_to(x1, y1).line_to(x2, y2).stroke();
        self
    }

    /// A filled grey rectangle (0 black … 1 white) behind what is drawn after it.
    pub fn shade(&mut self, x: f32, y: f32, w: f32, h: f32, gray: f32) -> &mut Self {
        self.content.save_state().set_fill_gray(gray).rect(x, y, w, h).fill_nonzero().restore_state();
        self
    }

    /// The width of a text at a size, in points.
    pub fn width(&mut self, text: &str, size: f32) -> f32 {
        self.doc.width(text, size)
    }

    /// Adds the page to its document.
    pub fn finish(self) {
        let data = deflate(&self.content.finish());
        self.doc.pages.push(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

    #[test]
    fn a_page_of_chinese_embeds_a_small_subset() {
        let font = Font::load(Path::new(FONT), 0).expect("deploy/test.sh installs fonts-wqy-microhei");
        let mut doc = Doc::new(font, "账单");
        let mut p = doc.page();
        p.text(50.0, 800.0, 14.0, Align::Left, "物业费 1,234.56 元");
        p.text(545.0, 780.0, 10.0, Align::Right, "合计");
        p.line(50.0, 770.0, 545.0, 770.0, 0.5);
        p.finish();
        assert_eq!(doc.pages(), 1);
        let pdf = doc.finish().unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // the whole face is megabytes; a page of a dozen characters embeds a few KB
        assert!(pdf.len() < 60_000, "{} bytes", pdf.len());
    }

    #[test]
    fn a_font_without_chinese_is_refused() {
        let dejavu = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
        if dejavu.exists() {
            assert!(Font::load(dejavu, 0).is_err());
        }
        assert!(Font::load(Path::new("/nonexistent.ttf"), 0).is_err());
    }
}

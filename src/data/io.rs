//! Decoding images and label maps, and writing PNGs atomically.
//!
//! Label maps are read with the `png` crate without transformations so palette PNGs give their
//! indices (the `image` crate would expand them to RGB).

use super::error::{DataError, DataResult};
use std::path::Path;

/// An 8-bit RGB image, row-major HWC.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub w: usize,
    pub h: usize,
    pub data: Vec<u8>,
}

/// A class-index map, row-major HxW.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelMap {
    pub w: usize,
    pub h: usize,
    pub data: Vec<u8>,
}

fn read_bytes(path: &Path) -> DataResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
                what: "file (not found)".into(),
            }
        } else {
            DataError::io(path, e)
        }
    })
}

/// Where a JPEG's final EOI marker starts, if it ends with one (trailing padding some
/// encoders append is tolerated).
fn jpeg_eoi(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while end > 0 && (bytes[end - 1] == 0 || bytes[end - 1] == b'\n' || bytes[end - 1] == b'\r') {
        end -= 1;
    }
    (end >= 2 && bytes[end - 2..end] == [0xFF, 0xD9]).then(|| end - 2)
}

/// Most decoded bytes allowed per byte of an encoded file. Deflate cannot expand data more
/// than ~1032x and a JPEG needs at least one bit per 8x8 block in its DC scan, so a header
/// claiming more pixels than this is corrupt; refusing it up front bounds what a hostile or
/// damaged file can make the decoder allocate.
const MAX_EXPANSION: u64 = 1100;

fn alloc_budget(encoded: usize) -> u64 {
    MAX_EXPANSION * encoded as u64 + (1 << 16)
}

/// Decodes a JPEG or PNG (any colour type) to 8-bit RGB.
pub fn read_image(path: &Path) -> DataResult<RgbImage> {
    decode_image(&read_bytes(path)?, path)
}

/// [`read_image`] on bytes in memory; `path` names them in errors.
pub fn decode_image(bytes: &[u8], path: &Path) -> DataResult<RgbImage> {
    let decode = |why: String| DataError::Decode {
        path: path.to_path_buf(),
        why,
    };
    let fmt = image::guess_format(bytes).map_err(|e| decode(e.to_string()))?;
    if fmt == image::ImageFormat::Jpeg {
        let Some(eoi) = jpeg_eoi(bytes) else {
            return Err(decode("JPEG has no end-of-image marker".into()));
        };
        // Strict mode also refuses stray bytes between header segments, which some cameras
        // write and which say nothing about the pixels: only there is leniency kept.
        let mut strict = true;
        let img = match decode_jpeg(bytes, true) {
            Err(e) if e.contains("[strict-mode]") => {
                strict = false;
                decode_jpeg(bytes, false)
            }
            r => r,
        }
        .map_err(decode)?;
        // The decoder zero-fills a scan that runs into a marker, so a file cut mid-scan that
        // still ends in EOI decodes without complaint (the rest comes out flat). A complete
        // scan never needs bits past its end: with stuffed 0xFF bytes (all-ones bits) put
        // before the EOI, it decodes the same; a cut one reads them and changes or fails.
        let mut ones = Vec::with_capacity(bytes.len() + 64);
        ones.extend_from_slice(&bytes[..eoi]);
        for _ in 0..32 {
            ones.extend_from_slice(&[0xFF, 0x00]);
        }
        ones.extend_from_slice(&bytes[eoi..]);
        if decode_jpeg(&ones, strict).ok().as_ref() != Some(&img) {
            return Err(decode(
                "the JPEG's scan data ends before the image does (truncated file)".into(),
            ));
        }
        return Ok(img);
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), fmt);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(alloc_budget(bytes.len()).min(512 << 20));
    reader.limits(limits);
    let img = reader.decode().map_err(|e| decode(e.to_string()))?;
    let rgb = img.to_rgb8();
    Ok(RgbImage {
        w: rgb.width() as usize,
        h: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// Decodes a JPEG with zune-jpeg, normally in strict mode. The `image` crate runs the same
/// decoder leniently, which turns corrupt entropy-coded data into grey without a word; strict
/// mode reports it.
fn decode_jpeg(bytes: &[u8], strict: bool) -> Result<RgbImage, String> {
    use zune_jpeg::zune_core::{
        bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions,
    };
    let opts = DecoderOptions::default()
        .set_strict_mode(strict)
        .set_max_width(65535)
        .set_max_height(65535);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    dec.decode_headers().map_err(|e| e.to_string())?;
    let (w, h) = dec.dimensions().ok_or("no image dimensions")?;
    if (w as u64) * (h as u64) > alloc_budget(bytes.len()) {
        return Err(format!(
            "the header claims {w}x{h} pixels, more than {} bytes of JPEG data can hold",
            bytes.len()
        ));
    }
    let gray = matches!(
        dec.input_colorspace(),
        Some(ColorSpace::Luma | ColorSpace::LumaA)
    );
    let out = if gray {
        ColorSpace::Luma
    } else {
        ColorSpace::RGB
    };
    dec.set_options(opts.jpeg_set_out_colorspace(out));
    let px = dec.decode().map_err(|e| e.to_string())?;
    let data = if gray {
        px.iter().flat_map(|&v| [v, v, v]).collect()
    } else {
        px
    };
    if data.len() != w * h * 3 {
        return Err(format!(
            "decoded {} bytes for a {w}x{h} RGB image",
            data.len()
        ));
    }
    Ok(RgbImage { w, h, data })
}

/// Reads a label PNG's raw indices: palette (indices, not colours) or grayscale, 1–8 bits.
pub fn read_label(path: &Path) -> DataResult<LabelMap> {
    decode_label(&read_bytes(path)?, path)
}

/// [`read_label`] on bytes in memory; `path` names them in errors.
pub fn decode_label(bytes: &[u8], path: &Path) -> DataResult<LabelMap> {
    let bad = |why: String| DataError::Decode {
        path: path.to_path_buf(),
        why,
    };
    let limits = png::Limits {
        bytes: alloc_budget(bytes.len()).min(512 << 20) as usize,
    };
    let dec = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), limits);
    let mut reader = dec.read_info().map_err(|e| bad(e.to_string()))?;
    let info = reader.info();
    let (w, h) = (info.width as usize, info.height as usize);
    let (ct, depth) = (info.color_type, info.bit_depth);
    if !matches!(ct, png::ColorType::Indexed | png::ColorType::Grayscale) {
        return Err(DataError::LabelFormat {
            path: path.to_path_buf(),
            why: format!("colour type {ct:?}"),
        });
    }
    let bits = match depth {
        png::BitDepth::One => 1,
        png::BitDepth::Two => 2,
        png::BitDepth::Four => 4,
        png::BitDepth::Eight => 8,
        png::BitDepth::Sixteen => {
            return Err(DataError::LabelFormat {
                path: path.to_path_buf(),
                why: "16-bit samples".into(),
            })
        }
    };
    // Checked before the buffer exists: the header's size claim is untrusted.
    if (w as u64) * (h as u64) > alloc_budget(bytes.len()) {
        return Err(bad(format!(
            "the header claims {w}x{h} pixels, more than {} bytes of PNG data can hold",
            bytes.len()
        )));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(e.to_string()))?;
    let stride = frame.line_size;
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        let row = &buf[y * stride..(y + 1) * stride];
        if bits == 8 {
            data.extend_from_slice(&row[..w]);
        } else {
            let per = 8 / bits;
            let mask = (1u8 << bits) - 1;
            for x in 0..w {
                let byte = row[x / per];
                let shift = 8 - bits * (x % per + 1);
                data.push((byte >> shift) & mask);
            }
        }
    }
    Ok(LabelMap { w, h, data })
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`, so readers
/// never see a half-written file (see [`crate::atomic::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> DataResult<()> {
    crate::atomic::write_atomic(path, bytes).map_err(|(p, e)| DataError::io(p, e))
}

fn encode_png(
    path: &Path,
    w: usize,
    h: usize,
    ct: png::ColorType,
    palette: Option<Vec<u8>>,
    data: &[u8],
) -> DataResult<Vec<u8>> {
    let mut out = Vec::new();
    let err = |e: png::EncodingError| DataError::invalid(path.display().to_string(), e.to_string());
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(ct);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(p) = palette {
            enc.set_palette(p);
        }
        let mut wr = enc.write_header().map_err(err)?;
        wr.write_image_data(data).map_err(err)?;
    }
    Ok(out)
}

/// Writes an indexed PNG whose indices are the class ids and whose palette holds `colours`.
/// Other palette entries are black, except 255 (the usual ignore index): white, so ignored
/// regions stand out.
pub fn write_palette_png(
    path: &Path,
    w: usize,
    h: usize,
    indices: &[u8],
    colours: &[[u8; 3]],
) -> DataResult<()> {
    if indices.len() != w * h {
        return Err(DataError::invalid(
            path.display().to_string(),
            format!("{} indices for a {w}x{h} image", indices.len()),
        ));
    }
    let mut pal = vec![0u8; 256 * 3];
    for (i, c) in colours.iter().take(256).enumerate() {
        pal[i * 3..i * 3 + 3].copy_from_slice(c);
    }
    pal[255 * 3..].copy_from_slice(&[255, 255, 255]);
    let bytes = encode_png(path, w, h, png::ColorType::Indexed, Some(pal), indices)?;
    write_atomic(path, &bytes)
}

/// Writes an 8-bit RGB PNG.
pub fn write_rgb_png(path: &Path, img: &RgbImage) -> DataResult<()> {
    let bytes = encode_png(path, img.w, img.h, png::ColorType::Rgb, None, &img.data)?;
    write_atomic(path, &bytes)
}

/// Writes an 8-bit grayscale PNG (used for raw class-index maps such as CamVid's).
pub fn write_gray_png(path: &Path, w: usize, h: usize, data: &[u8]) -> DataResult<()> {
    let bytes = encode_png(path, w, h, png::ColorType::Grayscale, None, data)?;
    write_atomic(path, &bytes)
}

//! Decoding images and label maps, and writing PNGs atomically.
//!
//! Label maps are read with the `png` crate without transformations so palette PNGs give their
//! indices (the `image` crate would expand them to RGB).

use super::error::{DataError, DataResult};
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// A JPEG must end with the EOI marker; some decoders silently grey-fill truncated scans.
fn jpeg_truncated(bytes: &[u8]) -> bool {
    let mut end = bytes.len();
    // Tolerate trailing padding some encoders append.
    while end > 0 && (bytes[end - 1] == 0 || bytes[end - 1] == b'\n' || bytes[end - 1] == b'\r') {
        end -= 1;
    }
    end < 2 || bytes[end - 2..end] != [0xFF, 0xD9]
}

/// Decodes a JPEG or PNG (any colour type) to 8-bit RGB.
pub fn read_image(path: &Path) -> DataResult<RgbImage> {
    let bytes = read_bytes(path)?;
    let decode = |why: String| DataError::Decode {
        path: path.to_path_buf(),
        why,
    };
    let fmt = image::guess_format(&bytes).map_err(|e| decode(e.to_string()))?;
    if fmt == image::ImageFormat::Jpeg && jpeg_truncated(&bytes) {
        return Err(decode("JPEG has no end-of-image marker".into()));
    }
    let img =
        image::load_from_memory_with_format(&bytes, fmt).map_err(|e| decode(e.to_string()))?;
    let rgb = img.to_rgb8();
    Ok(RgbImage {
        w: rgb.width() as usize,
        h: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// Reads a label PNG's raw indices: palette (indices, not colours) or grayscale, 1–8 bits.
pub fn read_label(path: &Path) -> DataResult<LabelMap> {
    let bytes = read_bytes(path)?;
    let bad = |why: String| DataError::Decode {
        path: path.to_path_buf(),
        why,
    };
    let dec = png::Decoder::new(std::io::Cursor::new(&bytes));
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
/// never see a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> DataResult<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let tmp: PathBuf = path.with_file_name(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| DataError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, e)
    })
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

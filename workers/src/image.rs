//! Frame pixels, shared by ingest (encode what it samples) and detect
//! (decode what it pulls): JPEG coding (libjpeg-turbo, via mozjpeg) and the
//! resize every model adapter uses, a port of Pillow's bilinear resampling (`Image.resize(..., BILINEAR)`,
//! a triangle filter widened when shrinking, so downscaling averages instead of
//! aliasing) in the same 8-bit fixed point, so our input tensors match a
//! Python pipeline built on Pillow.

/// Largest frame side accepted (8K); larger JPEGs are refused before decoding.
pub const MAX_SIDE: usize = 8192;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a decodable JPEG: {0}")]
    Decode(String),
    #[error("frame of {0}x{1} pixels is outside 1..={MAX_SIDE} per side")]
    Size(usize, usize),
}

/// Decode a JPEG frame to RGB (libjpeg-turbo: accurate integer IDCT, fancy
/// upsampling, as Pillow decodes).
pub fn decode_jpeg(bytes: &[u8]) -> Result<Rgb, ImageError> {
    // libjpeg reports fatal errors by unwinding out of the decoder (mozjpeg's
    // error manager); contain it here, so a corrupt frame is an error, not a
    // crashed worker thread.
    let decoded = std::panic::catch_unwind(|| -> Result<Rgb, ImageError> {
        let decode_error = |e: std::io::Error| ImageError::Decode(e.to_string());
        let d = mozjpeg::Decompress::new_mem(bytes).map_err(decode_error)?;
        let (width, height) = (d.width(), d.height());
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(ImageError::Size(width, height));
        }
        let mut started = d.rgb().map_err(decode_error)?;
        let pixels = started.read_scanlines::<u8>().map_err(decode_error)?;
        started.finish().map_err(decode_error)?;
        if pixels.len() != width * height * 3 {
            return Err(ImageError::Decode("truncated image data".into()));
        }
        Ok(Rgb {
            width,
            height,
            pixels,
        })
    });
    decoded.unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("corrupt JPEG data");
        Err(ImageError::Decode(why.to_owned()))
    })
}

/// Encode RGB pixels as a baseline JPEG (libjpeg-turbo's fast settings; the
/// ingest role's frames). Encoder errors are contained like decoder ones.
pub fn encode_jpeg(img: &Rgb, quality: u8) -> Result<Vec<u8>, ImageError> {
    if img.width == 0 || img.height == 0 || img.pixels.len() != img.width * img.height * 3 {
        return Err(ImageError::Size(img.width, img.height));
    }
    let encoded = std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_fastest_defaults();
        c.set_size(img.width, img.height);
        c.set_quality(f32::from(quality.clamp(1, 100)));
        let mut started = c.start_compress(Vec::with_capacity(img.pixels.len() / 8))?;
        started.write_scanlines(&img.pixels)?;
        started.finish()
    });
    match encoded {
        Ok(Ok(jpeg)) => Ok(jpeg),
        Ok(Err(e)) => Err(ImageError::Decode(format!("JPEG encoding failed: {e}"))),
        Err(_) => Err(ImageError::Decode("JPEG encoding failed".into())),
    }
}

/// Decode a batch of frames, several at a time (the cores are free while the
/// previous batch's inference is not running).
pub fn decode_all(jpegs: &[&[u8]]) -> Vec<Result<Rgb, ImageError>> {
    par_map(jpegs, |j| decode_jpeg(j))
}

thread_local! {
    static IN_PAR_MAP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `f` over `items` on up to as many threads as cores (4 at most), in order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(per)
            .map(|part| {
                let f = &f;
                s.spawn(move || {
                    IN_PAR_MAP.set(true);
                    part.iter().map(f).collect::<Vec<R>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Filter taps of one output pixel: first input index and fixed-point weights.
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    /// `ksize` weights per output pixel.
    weights: Vec<i32>,
    ksize: usize,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter.
fn taps(in_size: usize, out_size: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the bilinear filter's support is 1
    let ksize = support.ceil() as usize * 2 + 1;
    let mut t = Taps {
        start: Vec::with_capacity(out_size),
        len: Vec::with_capacity(out_size),
        weights: vec![0; out_size * ksize],
        ksize,
    };
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // `(int)` in C truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let d = ((x + xmin) as f64 - center + 0.5) * ss;
            let w = (1.0 - d.abs()).max(0.0);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(xmax) {
            let v = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = v * f64::from(1u32 << PRECISION_BITS);
            t.weights[xx * ksize + x] = if v < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        t.start.push(xmin);
        t.len.push(xmax);
    }
    t
}

impl Taps {
    /// The same taps, each widened to exactly `ksize` by zero weights (moved
    /// left at the right edge), so the horizontal pass runs a fixed-length,
    /// unrolled loop. Adding zero-weighted pixels does not change a sum.
    fn fixed(&self, in_size: usize) -> Option<(Vec<usize>, Vec<i32>)> {
        let k = self.ksize;
        if in_size < k {
            return None;
        }
        let mut starts = Vec::with_capacity(self.start.len());
        let mut weights = vec![0; self.weights.len()];
        for (xx, (&start, &len)) in self.start.iter().zip(&self.len).enumerate() {
            let s = start.min(in_size - k);
            let shift = start - s;
            weights[xx * k + shift..xx * k + shift + len]
                .copy_from_slice(&self.weights[xx * k..xx * k + len]);
            starts.push(s);
        }
        Some((starts, weights))
    }
}

/// One output row of the horizontal pass with fixed-length taps.
fn horizontal_fixed<const K: usize>(
    in_row: &[u8],
    starts: &[usize],
    weights: &[i32],
    out_row: &mut [u8],
) {
    let half = 1i32 << (PRECISION_BITS - 1);
    for ((out_px, &start), w) in out_row
        .chunks_exact_mut(3)
        .zip(starts)
        .zip(weights.chunks_exact(K))
    {
        let px = &in_row[start * 3..start * 3 + K * 3];
        let (mut r, mut g, mut b) = (half, half, half);
        for k in 0..K {
            r += i32::from(px[k * 3]) * w[k];
            g += i32::from(px[k * 3 + 1]) * w[k];
            b += i32::from(px[k * 3 + 2]) * w[k];
        }
        out_px[0] = clip8(r);
        out_px[1] = clip8(g);
        out_px[2] = clip8(b);
    }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Fill `out` (rows of `row_len` bytes) with `fill(row, bytes)`, rows split
/// over a few threads: pre-processing runs while the inference threads idle,
/// so its cores are free.
fn par_rows(out: &mut [u8], row_len: usize, fill: impl Fn(usize, &mut [u8]) + Sync) {
    let rows = out.len() / row_len.max(1);
    // Inside `par_map` the cores are already shared out by frame.
    let threads = if IN_PAR_MAP.get() {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
            .min(rows / 64)
            .max(1)
    };
    if threads == 1 {
        for (r, row) in out.chunks_exact_mut(row_len).enumerate() {
            fill(r, row);
        }
        return;
    }
    let per = rows.div_ceil(threads);
    std::thread::scope(|s| {
        for (t, part) in out.chunks_mut(per * row_len).enumerate() {
            let fill = &fill;
            s.spawn(move || {
                for (r, row) in part.chunks_exact_mut(row_len).enumerate() {
                    fill(t * per + r, row);
                }
            });
        }
    });
}

/// Resize to `out_w` x `out_h` exactly as Pillow's bilinear `resize` does:
/// a horizontal pass over the rows the vertical pass needs, then a vertical one.
pub fn resize(src: &Rgb, out_w: usize, out_h: usize) -> Rgb {
    let (out_w, out_h) = (out_w.max(1), out_h.max(1));
    let h_taps = (out_w != src.width).then(|| taps(src.width, out_w));
    let v_taps = (out_h != src.height).then(|| taps(src.height, out_h));
    // Rows the vertical pass reads.
    let (first, last) = match &v_taps {
        Some(v) => (v.start[0], v.start[out_h - 1] + v.len[out_h - 1]),
        None => (0, src.height),
    };
    let half = 1i32 << (PRECISION_BITS - 1);
    let temp = match &h_taps {
        None => Rgb {
            width: src.width,
            height: last - first,
            pixels: src.pixels[first * src.width * 3..last * src.width * 3].to_vec(),
        },
        Some(t) => {
            let mut pixels = vec![0u8; (last - first) * out_w * 3];
            let fixed = t.fixed(src.width);
            par_rows(&mut pixels, out_w * 3, |r, out_row| {
                let row = first + r;
                let in_row = &src.pixels[row * src.width * 3..(row + 1) * src.width * 3];
                if let Some((starts, weights)) = &fixed {
                    match t.ksize {
                        3 => return horizontal_fixed::<3>(in_row, starts, weights, out_row),
                        5 => return horizontal_fixed::<5>(in_row, starts, weights, out_row),
                        7 => return horizontal_fixed::<7>(in_row, starts, weights, out_row),
                        _ => {}
                    }
                }
                for (xx, out_px) in out_row.chunks_exact_mut(3).enumerate() {
                    let (start, len) = (t.start[xx], t.len[xx]);
                    let w = &t.weights[xx * t.ksize..xx * t.ksize + len];
                    let px = &in_row[start * 3..(start + len) * 3];
                    let (mut r, mut g, mut b) = (half, half, half);
                    for (k, p) in w.iter().zip(px.chunks_exact(3)) {
                        r += i32::from(p[0]) * k;
                        g += i32::from(p[1]) * k;
                        b += i32::from(p[2]) * k;
                    }
                    out_px[0] = clip8(r);
                    out_px[1] = clip8(g);
                    out_px[2] = clip8(b);
                }
            });
            Rgb {
                width: out_w,
                height: last - first,
                pixels,
            }
        }
    };
    let Some(t) = v_taps else {
        return temp;
    };
    let stride = temp.width * 3;
    let mut pixels = vec![0u8; out_h * stride];
    par_rows(&mut pixels, stride, |yy, out_row| {
        let mut acc = vec![half; stride];
        let start = t.start[yy] - first;
        for (y, k) in t.weights[yy * t.ksize..yy * t.ksize + t.len[yy]]
            .iter()
            .enumerate()
        {
            let row = &temp.pixels[(start + y) * stride..(start + y + 1) * stride];
            for (a, p) in acc.iter_mut().zip(row) {
                *a += i32::from(*p) * k;
            }
        }
        for (o, a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(*a);
        }
    });
    Rgb {
        width: temp.width,
        height: out_h,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_to_the_same_size_is_the_identity() {
        let img = Rgb {
            width: 3,
            height: 2,
            pixels: (0..18).collect(),
        };
        assert_eq!(resize(&img, 3, 2), img);
    }

    #[test]
    fn halving_averages_pixel_pairs_like_pillow() {
        // Pillow 13: Image.frombytes("RGB", (4, 1), bytes([0,0,0, 100,100,100, 200,200,200, 40,40,40]))
        //   .resize((2, 1), Image.BILINEAR) -> (71,71,71), (117,117,117)
        // (support 2: taps 0.75, 0.75, 0.25 around each centre, renormalised).
        let px = [0u8, 100, 200, 40];
        let img = Rgb {
            width: 4,
            height: 1,
            pixels: px.iter().flat_map(|v| [*v; 3]).collect(),
        };
        let out = resize(&img, 2, 1);
        assert_eq!(out.pixels, vec![71, 71, 71, 117, 117, 117]);
    }

    #[test]
    fn the_unrolled_horizontal_pass_equals_the_general_one() {
        // 768 -> 416 (ksize 5) and 50 -> 7 (ksize 17, general loop only) on noise.
        let mut seed = 7u32;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 16) as u8
                })
                .collect()
        };
        let img = Rgb {
            width: 768,
            height: 3,
            pixels: noise(768 * 3 * 3),
        };
        let t = taps(768, 416);
        assert_eq!(t.ksize, 5);
        let (starts, weights) = t.fixed(768).unwrap();
        for row in 0..3 {
            let in_row = &img.pixels[row * 768 * 3..(row + 1) * 768 * 3];
            let mut fast = vec![0u8; 416 * 3];
            horizontal_fixed::<5>(in_row, &starts, &weights, &mut fast);
            let general: Vec<u8> = (0..416)
                .flat_map(|xx| {
                    let w = &t.weights[xx * 5..xx * 5 + t.len[xx]];
                    let px = &in_row[t.start[xx] * 3..(t.start[xx] + t.len[xx]) * 3];
                    (0..3).map(move |c| {
                        let acc: i32 = w
                            .iter()
                            .zip(px.chunks_exact(3))
                            .map(|(k, p)| i32::from(p[c]) * k)
                            .sum();
                        clip8(acc + (1 << (PRECISION_BITS - 1)))
                    })
                })
                .collect();
            assert_eq!(fast, general);
        }
        let small = Rgb {
            width: 50,
            height: 2,
            pixels: noise(50 * 2 * 3),
        };
        assert_eq!(resize(&small, 7, 2).pixels.len(), 7 * 2 * 3);
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert!(decode_jpeg(b"not a jpeg").is_err());
        assert!(decode_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).is_err());
        assert!(decode_jpeg(&[]).is_err());
        let err = decode_jpeg(b"not a jpeg").unwrap_err().to_string();
        assert!(err.starts_with("not a decodable JPEG"), "{err}");
    }
}

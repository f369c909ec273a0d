//! Person attributes from pixels: the dominant clothing colour of a
//! person's upper body (torso) and lower body (legs), named from a fixed
//! set ([`ColorName`]), read from the frame inside the person's box.
//!
//! Each region is a fixed part of the box (below the head and above the
//! hips for the torso, the thighs and shins for the legs; the central part
//! of the width, where the body is rather than the background). What is
//! left of the background in a region (between walking legs, beside a
//! narrow torso) is discounted by its likeness to the surround: the strips
//! just outside the box at the same rows. A pixel's vote is weighted by how
//! much more common its colour is inside the region than in the surround,
//! so pavement between the legs does not outvote the trousers, while a
//! region that looks like its surround everywhere (grey trousers on grey
//! pavement) is still named by all its pixels.

pub mod colors;

use panoptes_shared::domain::attribute::{ColorName, PersonAttributes};
use panoptes_shared::domain::detection::BoundingBox;

use crate::image::Rgb;
pub use colors::color_name;

/// Boxes narrower or shorter than this (frame pixels) are not described:
/// their regions hold too few pixels to name a colour.
pub const MIN_WIDTH_PX: usize = 10;
pub const MIN_HEIGHT_PX: usize = 32;

/// A part of a person's box, in fractions of its width and height.
#[derive(Debug, Clone, Copy)]
struct Part {
    left: f32,
    right: f32,
    top: f32,
    bottom: f32,
}

/// The torso: below the head and shoulders (about the top fifth of a
/// standing person), above the hips (about half way down).
const UPPER: Part = Part {
    left: 0.25,
    right: 0.75,
    top: 0.20,
    bottom: 0.48,
};
/// The legs: from below the hips to above the shoes.
const LOWER: Part = Part {
    left: 0.28,
    right: 0.72,
    top: 0.55,
    bottom: 0.88,
};
/// Width of each surround strip, beside the box, as a fraction of the box's width.
const SURROUND: f32 = 0.25;
/// Foreground weight below this share of a region's pixels: the region
/// looks like its surround throughout, and all its pixels vote alike.
const MIN_FOREGROUND: f32 = 0.2;

/// Colour bins of the background model: 8 levels per channel.
const LEVELS: usize = 8;

/// A pixel rectangle `[x0, x1) x [y0, y1)` of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
}

impl Rect {
    fn area(self) -> usize {
        (self.x1 - self.x0) * (self.y1 - self.y0)
    }
}

/// The upper and lower clothing colours of the person in `bbox` (as the
/// detector reports it), or `None` when the box is too small in pixels.
pub fn describe(frame: &Rgb, bbox: &BoundingBox) -> Option<PersonAttributes> {
    let person = pixel_box(frame, bbox)?;
    let (upper_color, upper_color_share) = dominant(frame, person, UPPER)?;
    let (lower_color, lower_color_share) = dominant(frame, person, LOWER)?;
    Some(PersonAttributes {
        upper_color,
        lower_color,
        upper_color_share,
        lower_color_share,
    })
}

/// The box in frame pixels, clamped to the frame; `None` below the minimum size.
fn pixel_box(frame: &Rgb, b: &BoundingBox) -> Option<Rect> {
    let (w, h) = (frame.width as f32, frame.height as f32);
    let px = |v: f32, size: f32| (v * size).round().clamp(0.0, size) as usize;
    let r = Rect {
        x0: px(b.x, w),
        x1: px(b.x + b.width, w),
        y0: px(b.y, h),
        y1: px(b.y + b.height, h),
    };
    if frame.pixels.len() != frame.width * frame.height * 3
        || r.x1 < r.x0 + MIN_WIDTH_PX
        || r.y1 < r.y0 + MIN_HEIGHT_PX
    {
        return None;
    }
    Some(r)
}

/// `part` of `person`, in frame pixels (at least one pixel each way).
fn part_of(person: Rect, part: Part) -> Rect {
    let (w, h) = (
        (person.x1 - person.x0) as f32,
        (person.y1 - person.y0) as f32,
    );
    let at = |origin: usize, size: f32, f: f32| origin + (size * f).round() as usize;
    let x0 = at(person.x0, w, part.left);
    let y0 = at(person.y0, h, part.top);
    Rect {
        x0,
        x1: at(person.x0, w, part.right).max(x0 + 1).min(person.x1),
        y0,
        y1: at(person.y0, h, part.bottom).max(y0 + 1).min(person.y1),
    }
}

fn bin(p: &[u8]) -> usize {
    let q = |c: u8| usize::from(c) * LEVELS / 256;
    (q(p[0]) * LEVELS + q(p[1])) * LEVELS + q(p[2])
}

/// Pixels of `r`, each as `[r, g, b]`.
fn pixels(frame: &Rgb, r: Rect) -> impl Iterator<Item = &[u8]> {
    (r.y0..r.y1).flat_map(move |y| {
        let row = &frame.pixels[(y * frame.width + r.x0) * 3..(y * frame.width + r.x1) * 3];
        row.chunks_exact(3)
    })
}

/// The colour bins' shares among `rects`' pixels, and how many there were.
fn histogram<'a>(frame: &Rgb, rects: impl IntoIterator<Item = &'a Rect>) -> (Vec<f32>, usize) {
    let mut hist = vec![0f32; LEVELS * LEVELS * LEVELS];
    let mut n = 0;
    for r in rects {
        for p in pixels(frame, *r) {
            hist[bin(p)] += 1.0;
            n += 1;
        }
    }
    if n > 0 {
        hist.iter_mut().for_each(|v| *v /= n as f32);
    }
    (hist, n)
}

/// The strips just outside `person` on both sides, at `region`'s rows
/// (empty where the box touches the frame's edge).
fn surround(frame: &Rgb, person: Rect, region: Rect) -> [Rect; 2] {
    let strip = (((person.x1 - person.x0) as f32 * SURROUND).round() as usize).max(2);
    let left = Rect {
        x0: person.x0.saturating_sub(strip),
        x1: person.x0,
        ..region
    };
    let right = Rect {
        x0: person.x1,
        x1: (person.x1 + strip).min(frame.width),
        ..region
    };
    [left, right]
}

/// The dominant colour of `part` of `person` and its share of the region
/// (of its foreground weight, where the surround discounts the background).
fn dominant(frame: &Rgb, person: Rect, part: Part) -> Option<(ColorName, f32)> {
    let region = part_of(person, part);
    if region.area() == 0 {
        return None;
    }
    let (inside, n) = histogram(frame, &[region]);
    let (outside, m) = histogram(frame, &surround(frame, person, region));
    // How much of each colour bin is the person's: the part of the bin's
    // share inside the region that the surround does not explain.
    let weight: Vec<f32> = if m >= region.area() / 4 {
        inside
            .iter()
            .zip(&outside)
            .map(|(&i, &o)| if i > 0.0 { (1.0 - o / i).max(0.0) } else { 0.0 })
            .collect()
    } else {
        vec![1.0; inside.len()]
    };
    let mut votes = [0f32; ColorName::ALL.len()];
    for p in pixels(frame, region) {
        votes[index(color_name(p[0], p[1], p[2]))] += weight[bin(p)];
    }
    let mut total: f32 = votes.iter().sum();
    if total < MIN_FOREGROUND * n as f32 {
        votes = [0f32; ColorName::ALL.len()];
        for p in pixels(frame, region) {
            votes[index(color_name(p[0], p[1], p[2]))] += 1.0;
        }
        total = n as f32;
    }
    let (best, count) =
        votes.iter().enumerate().fold(
            (0, 0f32),
            |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
        );
    Some((ColorName::ALL[best], (count / total).clamp(0.0, 1.0)))
}

fn index(c: ColorName) -> usize {
    ColorName::ALL.iter().position(|&n| n == c).unwrap_or(0)
}

#[cfg(test)]
mod tests;

//! Colour naming on synthetic figures: a head, a torso with arms, two legs,
//! drawn on a background, described through the box a detector would give.

use super::*;
use ColorName::*;

const PAVEMENT: [u8; 3] = [150, 150, 155];
const GRASS: [u8; 3] = [60, 140, 50];
const SKIN: [u8; 3] = [215, 170, 140];
const RED: [u8; 3] = [200, 30, 35];
const BLUE: [u8; 3] = [40, 60, 150];
const BLACK: [u8; 3] = [25, 25, 30];
const WHITE: [u8; 3] = [235, 235, 235];
const GRAY: [u8; 3] = [120, 120, 125];

fn canvas(w: usize, h: usize, bg: [u8; 3]) -> Rgb {
    Rgb {
        width: w,
        height: h,
        pixels: bg.repeat(w * h),
    }
}

/// Fill `[x0, x1) x [y0, y1)` (clipped to the image).
fn fill(img: &mut Rgb, x0: usize, x1: usize, y0: usize, y1: usize, c: [u8; 3]) {
    for y in y0..y1.min(img.height) {
        for x in x0..x1.min(img.width) {
            img.pixels[(y * img.width + x) * 3..][..3].copy_from_slice(&c);
        }
    }
}

/// A person standing in `[x, x + w) x [y, y + h)`; `stride` spreads the legs
/// (0: together, 1: a walking stride to the box's edges). Returns the box.
fn person(
    img: &mut Rgb,
    (x, y, w, h): (usize, usize, usize, usize),
    top: [u8; 3],
    legs: [u8; 3],
    stride: f32,
) -> BoundingBox {
    let at = |f: f32, size: usize| (f * size as f32).round() as usize;
    // Head, torso, arms.
    fill(
        img,
        x + at(0.35, w),
        x + at(0.65, w),
        y,
        y + at(0.14, h),
        SKIN,
    );
    fill(
        img,
        x + at(0.2, w),
        x + at(0.8, w),
        y + at(0.14, h),
        y + at(0.52, h),
        top,
    );
    fill(
        img,
        x,
        x + at(0.2, w),
        y + at(0.16, h),
        y + at(0.45, h),
        top,
    );
    fill(
        img,
        x + at(0.8, w),
        x + w,
        y + at(0.16, h),
        y + at(0.45, h),
        top,
    );
    // Legs: each a column that leans out from the hips by `stride`.
    let (hip, foot) = (y + at(0.52, h), y + h);
    for row in hip..foot {
        let t = (row - hip) as f32 / (foot - hip) as f32;
        let spread = stride * t * 0.3;
        let left = 0.3 - spread;
        let right = 0.52 + spread;
        fill(
            img,
            x + at(left, w),
            x + at(left + 0.18, w),
            row,
            row + 1,
            legs,
        );
        fill(
            img,
            x + at(right, w),
            x + at(right + 0.18, w),
            row,
            row + 1,
            legs,
        );
    }
    BoundingBox::from_corners(
        x as f32,
        y as f32,
        (x + w) as f32,
        (y + h) as f32,
        img.width as u32,
        img.height as u32,
    )
}

#[test]
fn a_red_shirt_over_blue_trousers_is_named() {
    let mut img = canvas(320, 240, PAVEMENT);
    let b = person(&mut img, (100, 40, 60, 160), RED, BLUE, 0.0);
    let a = describe(&img, &b).unwrap();
    assert_eq!((a.upper_color, a.lower_color), (Red, Blue), "{a:?}");
    assert!(a.upper_color_share > 0.9, "{a:?}");
    assert!(a.lower_color_share > 0.5, "{a:?}");
}

#[test]
fn pavement_between_walking_legs_does_not_outvote_the_trousers() {
    let mut img = canvas(320, 240, PAVEMENT);
    let b = person(&mut img, (100, 40, 60, 160), WHITE, BLUE, 1.0);
    // Most of the legs' region is pavement seen between the legs.
    let region = part_of(pixel_box(&img, &b).unwrap(), LOWER);
    let blue = pixels(&img, region).filter(|p| *p == BLUE).count();
    assert!(
        blue * 2 < region.area(),
        "the legs cover under half: {blue}"
    );
    let a = describe(&img, &b).unwrap();
    assert_eq!((a.upper_color, a.lower_color), (White, Blue), "{a:?}");
}

#[test]
fn clothes_the_colour_of_the_background_are_still_named() {
    // Grey trousers on grey pavement: nothing in the region differs from
    // the surround, so every pixel votes.
    let mut img = canvas(320, 240, GRAY);
    let b = person(&mut img, (100, 40, 60, 160), BLACK, GRAY, 1.0);
    let a = describe(&img, &b).unwrap();
    assert_eq!((a.upper_color, a.lower_color), (Black, Gray), "{a:?}");
    // Black on grass.
    let mut img = canvas(320, 240, GRASS);
    let b = person(&mut img, (100, 40, 60, 160), BLACK, BLACK, 0.5);
    let a = describe(&img, &b).unwrap();
    assert_eq!((a.upper_color, a.lower_color), (Black, Black), "{a:?}");
}

#[test]
fn people_at_the_frame_edge_and_small_ones_are_described() {
    // Cut by the left edge: no surround on that side.
    let mut img = canvas(320, 240, PAVEMENT);
    let b = person(&mut img, (0, 40, 40, 110), BLUE, BLACK, 0.3);
    let a = describe(&img, &b).unwrap();
    assert_eq!((a.upper_color, a.lower_color), (Blue, Black), "{a:?}");
    // The smallest box described.
    let mut img = canvas(320, 240, PAVEMENT);
    let b = person(
        &mut img,
        (100, 40, MIN_WIDTH_PX, MIN_HEIGHT_PX),
        RED,
        BLACK,
        0.0,
    );
    let a = describe(&img, &b).unwrap();
    assert_eq!((a.upper_color, a.lower_color), (Red, Black), "{a:?}");
}

#[test]
fn boxes_below_the_minimum_size_or_empty_are_not_described() {
    let mut img = canvas(320, 240, PAVEMENT);
    let b = person(
        &mut img,
        (100, 40, MIN_WIDTH_PX - 1, MIN_HEIGHT_PX + 10),
        RED,
        BLUE,
        0.0,
    );
    assert_eq!(describe(&img, &b), None);
    let b = person(
        &mut img,
        (200, 40, MIN_WIDTH_PX + 10, MIN_HEIGHT_PX - 1),
        RED,
        BLUE,
        0.0,
    );
    assert_eq!(describe(&img, &b), None);
    let outside = BoundingBox {
        x: 1.2,
        y: 0.1,
        width: 0.3,
        height: 0.5,
    };
    assert_eq!(describe(&img, &outside), None);
    let empty = Rgb {
        width: 0,
        height: 0,
        pixels: vec![],
    };
    assert_eq!(describe(&empty, &b), None);
}

//! One pixel's colour name: HSV rules over the fixed set of
//! [`ColorName`]s. Dark pixels are black whatever their hue (hue is noise
//! there); pixels with little chroma are white, gray or black by value;
//! the rest are named by hue band, with dark or dull warm hues brown and
//! light dull reds pink.

use panoptes_shared::domain::attribute::ColorName;

/// Below this value (max channel, 0-1) a pixel is black.
const BLACK_VALUE: f32 = 0.20;
/// Below this saturation, or this chroma (max - min channel, 0-1), a pixel
/// has no reliable hue: named by value alone.
const GRAY_SATURATION: f32 = 0.18;
const GRAY_CHROMA: f32 = 0.08;
/// Achromatic pixels: black below, white above, gray between.
const DARK_GRAY_VALUE: f32 = 0.35;
const WHITE_VALUE: f32 = 0.80;

/// Hue, saturation and value of an RGB pixel: hue in degrees `[0, 360)`,
/// saturation and value 0-1, and the chroma (0-1).
pub fn hsv(r: u8, g: u8, b: u8) -> (f32, f32, f32, f32) {
    let (r, g, b) = (
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
    );
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    let saturation = if max > 0.0 { chroma / max } else { 0.0 };
    let hue = if chroma <= f32::EPSILON {
        0.0
    } else if max == r {
        60.0 * ((g - b) / chroma).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / chroma + 2.0)
    } else {
        60.0 * ((r - g) / chroma + 4.0)
    };
    (hue, saturation, max, chroma)
}

/// The name of one pixel's colour.
pub fn color_name(r: u8, g: u8, b: u8) -> ColorName {
    let (h, s, v, chroma) = hsv(r, g, b);
    if v < BLACK_VALUE {
        return ColorName::Black;
    }
    if s < GRAY_SATURATION || chroma < GRAY_CHROMA {
        return if v < DARK_GRAY_VALUE {
            ColorName::Black
        } else if v > WHITE_VALUE {
            ColorName::White
        } else {
            ColorName::Gray
        };
    }
    match h {
        h if !(12.0..345.0).contains(&h) => {
            if s < 0.45 && v > 0.70 {
                ColorName::Pink
            } else {
                ColorName::Red
            }
        }
        h if h < 40.0 => {
            // Dark orange, and the dull light ones (tan, beige), are brown.
            if v < 0.55 || (s < 0.40 && v < 0.80) {
                ColorName::Brown
            } else {
                ColorName::Orange
            }
        }
        h if h < 70.0 => {
            if v < 0.45 {
                ColorName::Brown
            } else {
                ColorName::Yellow
            }
        }
        h if h < 170.0 => ColorName::Green,
        h if h < 255.0 => ColorName::Blue,
        h if h < 290.0 => ColorName::Purple,
        _ => {
            if v > 0.50 {
                ColorName::Pink
            } else {
                ColorName::Purple
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColorName::*;

    #[test]
    fn primaries_and_everyday_clothing_colours_are_named() {
        for (rgb, want) in [
            ((0, 0, 0), Black),
            ((30, 28, 35), Black),
            ((45, 40, 38), Black),
            ((255, 255, 255), White),
            ((225, 228, 240), White),
            ((128, 128, 128), Gray),
            ((150, 150, 160), Gray),
            ((70, 70, 72), Black),
            ((220, 30, 30), Red),
            ((140, 20, 30), Red),
            ((240, 150, 160), Pink),
            ((230, 60, 180), Pink),
            ((250, 140, 20), Orange),
            ((110, 70, 40), Brown),
            ((190, 160, 120), Brown),
            ((240, 220, 40), Yellow),
            ((40, 160, 60), Green),
            ((30, 60, 200), Blue),
            ((50, 60, 95), Blue),
            ((170, 190, 220), Blue),
            ((120, 50, 170), Purple),
            ((90, 30, 90), Purple),
        ] {
            let (r, g, b) = rgb;
            assert_eq!(
                color_name(r, g, b),
                want,
                "rgb{rgb:?} hsv{:?}",
                hsv(r, g, b)
            );
        }
    }

    #[test]
    fn hue_follows_the_colour_wheel() {
        let (h, s, v, _) = hsv(255, 0, 0);
        assert_eq!((h, s, v), (0.0, 1.0, 1.0));
        assert_eq!(hsv(0, 255, 0).0, 120.0);
        assert_eq!(hsv(0, 0, 255).0, 240.0);
        assert_eq!(hsv(255, 0, 255).0, 300.0);
        assert_eq!(hsv(90, 90, 90).1, 0.0);
    }
}

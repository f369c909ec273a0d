//! Zone polygons in normalised frame coordinates (0..=1): 3-20 points, a
//! non-zero area and no self-intersection.

use crate::error::FieldError;

pub const MIN_POINTS: usize = 3;
pub const MAX_POINTS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Polygon(Vec<Point>);

impl Polygon {
    /// Parse `[[x, y], ...]`; errors name the field relative to the polygon (`points[3]`).
    pub fn parse(raw: &[Vec<f64>]) -> Result<Self, FieldError> {
        if !(MIN_POINTS..=MAX_POINTS).contains(&raw.len()) {
            return Err(FieldError::new(
                "points",
                format!(
                    "must have {MIN_POINTS}-{MAX_POINTS} points (got {})",
                    raw.len()
                ),
            ));
        }
        let mut points = Vec::with_capacity(raw.len());
        for (i, p) in raw.iter().enumerate() {
            let [x, y] = p.as_slice() else {
                return Err(FieldError::new(
                    format!("points[{i}]"),
                    "must be a pair [x, y]",
                ));
            };
            for v in [x, y] {
                if !v.is_finite() || !(0.0..=1.0).contains(v) {
                    return Err(FieldError::new(
                        format!("points[{i}]"),
                        "coordinates must be between 0 and 1",
                    ));
                }
            }
            points.push(Point { x: *x, y: *y });
        }
        let poly = Self(points);
        if let Some((a, b)) = poly.self_intersection() {
            return Err(FieldError::new(
                "points",
                format!("polygon edges {a} and {b} cross (self-intersecting)"),
            ));
        }
        if poly.area() < 1e-9 {
            return Err(FieldError::new(
                "points",
                "polygon has no area (points are collinear or repeated)",
            ));
        }
        Ok(poly)
    }

    pub fn points(&self) -> &[Point] {
        &self.0
    }

    pub fn to_raw(&self) -> Vec<Vec<f64>> {
        self.0.iter().map(|p| vec![p.x, p.y]).collect()
    }

    /// Absolute area by the shoelace formula.
    pub fn area(&self) -> f64 {
        let n = self.0.len();
        (0..n)
            .map(|i| {
                let (a, b) = (self.0[i], self.0[(i + 1) % n]);
                a.x * b.y - b.x * a.y
            })
            .sum::<f64>()
            .abs()
            / 2.0
    }

    /// Even-odd rule: whether `p` lies inside.
    pub fn contains(&self, p: Point) -> bool {
        let n = self.0.len();
        let mut inside = false;
        let mut j = n - 1;
        for i in 0..n {
            let (a, b) = (self.0[i], self.0[j]);
            if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// The first pair of non-adjacent edges that touch, if any. Edge `i` runs
    /// from point `i` to point `i+1`.
    fn self_intersection(&self) -> Option<(usize, usize)> {
        let n = self.0.len();
        let edge = |i: usize| (self.0[i], self.0[(i + 1) % n]);
        for i in 0..n {
            for j in (i + 1)..n {
                let adjacent = j == i + 1 || (i == 0 && j == n - 1);
                if adjacent {
                    continue;
                }
                let ((p1, p2), (q1, q2)) = (edge(i), edge(j));
                if segments_touch(p1, p2, q1, q2) {
                    return Some((i, j));
                }
            }
        }
        None
    }
}

fn orient(a: Point, b: Point, c: Point) -> f64 {
    (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
}

fn on_segment(a: Point, b: Point, p: Point) -> bool {
    p.x >= a.x.min(b.x) && p.x <= a.x.max(b.x) && p.y >= a.y.min(b.y) && p.y <= a.y.max(b.y)
}

fn segments_touch(p1: Point, p2: Point, q1: Point, q2: Point) -> bool {
    const EPS: f64 = 1e-12;
    let (d1, d2) = (orient(q1, q2, p1), orient(q1, q2, p2));
    let (d3, d4) = (orient(p1, p2, q1), orient(p1, p2, q2));
    if ((d1 > EPS && d2 < -EPS) || (d1 < -EPS && d2 > EPS))
        && ((d3 > EPS && d4 < -EPS) || (d3 < -EPS && d4 > EPS))
    {
        return true;
    }
    (d1.abs() <= EPS && on_segment(q1, q2, p1))
        || (d2.abs() <= EPS && on_segment(q1, q2, p2))
        || (d3.abs() <= EPS && on_segment(p1, p2, q1))
        || (d4.abs() <= EPS && on_segment(p1, p2, q2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poly(points: &[[f64; 2]]) -> Result<Polygon, FieldError> {
        Polygon::parse(&points.iter().map(|p| p.to_vec()).collect::<Vec<_>>())
    }

    #[test]
    fn square_is_accepted_and_contains_its_centre() {
        let p = poly(&[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]).unwrap();
        assert!(p.contains(Point { x: 0.5, y: 0.5 }));
        assert!(!p.contains(Point { x: 0.95, y: 0.5 }));
        assert!((p.area() - 0.64).abs() < 1e-9);
    }

    #[test]
    fn bow_tie_is_rejected_as_self_intersecting() {
        let err = poly(&[[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]).unwrap_err();
        assert!(err.message.contains("self-intersecting"), "{err}");
    }

    #[test]
    fn bounds_counts_and_degenerate_shapes_are_rejected() {
        assert_eq!(poly(&[[0.1, 0.1], [0.9, 0.1]]).unwrap_err().field, "points");
        assert_eq!(
            poly(&[[0.1, 0.1], [1.2, 0.1], [0.5, 0.5]])
                .unwrap_err()
                .field,
            "points[1]"
        );
        assert!(
            poly(&[[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]])
                .unwrap_err()
                .message
                .contains("no area")
        );
        let many: Vec<[f64; 2]> = (0..21)
            .map(|i| {
                [
                    0.5 + 0.4 * (i as f64 / 3.0).cos(),
                    0.5 + 0.4 * (i as f64 / 3.0).sin(),
                ]
            })
            .collect();
        assert_eq!(poly(&many).unwrap_err().field, "points");
    }
}

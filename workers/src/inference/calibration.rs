//! Score calibration per model, so that a scene's `confidenceThreshold`
//! means the same whichever model runs: `confidence = σ(slope · logit(raw) +
//! offset)`, a monotone map fitted on labelled frames and stored beside the
//! model (`<model>.calibration.json`). The slope comes from a logistic fit of
//! "this detection is a person" on the raw score (Platt scaling); the offset
//! puts the raw score at which the model counts people without bias (as many
//! detections as labelled people) at [`UNBIASED_AT`], the documented default
//! threshold. Being monotone, it never changes which boxes win suppression.

use std::path::{Path, PathBuf};

use panoptes_shared::config::InputSize;
use serde::{Deserialize, Serialize};

/// The calibrated confidence at which counts are unbiased: the scenes'
/// default `confidenceThreshold`.
pub const UNBIASED_AT: f64 = 0.6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    pub slope: f64,
    pub offset: f64,
    /// What it was fitted on, for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fitted_on: Option<String>,
    /// The raw score mapped to [`UNBIASED_AT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbiased_raw: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
#[error("calibration {path}: {message}")]
pub struct CalibrationError {
    pub path: PathBuf,
    pub message: String,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Calibration {
    /// Raw scores as they are.
    pub fn identity() -> Self {
        Self {
            slope: 1.0,
            offset: 0.0,
            fitted_on: None,
            unbiased_raw: None,
        }
    }

    /// `<dir>/<stem>.calibration.json` for the model at `model`.
    pub fn path_beside(model: &Path) -> PathBuf {
        model.with_extension("calibration.json")
    }

    /// The file for the model at `model` run at input `size` (`None`: its
    /// own size): `<stem>.<H>x<W>.calibration.json`, since scores shift
    /// with the picture size.
    pub fn path_for(model: &Path, size: Option<InputSize>) -> PathBuf {
        match size {
            None => Self::path_beside(model),
            Some(size) => model.with_extension(format!("{size}.calibration.json")),
        }
    }

    /// The calibration stored beside the model, if there is one.
    pub fn load_beside(model: &Path) -> Result<Option<Self>, CalibrationError> {
        Self::load(&Self::path_beside(model))
    }

    /// The calibration in the file at `path`, if there is one.
    pub fn load(path: &Path) -> Result<Option<Self>, CalibrationError> {
        let path = path.to_owned();
        let err = |message: String| CalibrationError {
            path: path.clone(),
            message,
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let c: Self = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
        if !(c.slope.is_finite() && c.slope > 0.0 && c.offset.is_finite()) {
            return Err(err(format!(
                "slope must be positive and offset finite (slope {}, offset {})",
                c.slope, c.offset
            )));
        }
        Ok(Some(c))
    }

    /// The calibrated confidence of a raw score.
    pub fn confidence(&self, raw: f32) -> f32 {
        if raw <= 0.0 || raw >= 1.0 {
            return raw.clamp(0.0, 1.0);
        }
        sigmoid(self.slope * logit(f64::from(raw)) + self.offset) as f32
    }

    /// The raw score whose confidence is `confidence` (the inverse map): a
    /// scene's threshold in the model's own terms.
    pub fn raw_threshold(&self, confidence: f32) -> f32 {
        if confidence <= 0.0 || confidence >= 1.0 {
            return confidence.clamp(0.0, 1.0);
        }
        sigmoid((logit(f64::from(confidence)) - self.offset) / self.slope) as f32
    }

    /// Fit on detections `(raw score, is a labelled person)` of frames with
    /// `people` labelled people in all.
    pub fn fit(scored: &[(f32, bool)], people: usize, fitted_on: impl Into<String>) -> Self {
        let slope = platt_slope(scored);
        let unbiased_raw = unbiased_threshold(scored, people);
        Self {
            slope,
            offset: logit(UNBIASED_AT) - slope * logit(unbiased_raw),
            fitted_on: Some(fitted_on.into()),
            unbiased_raw: Some((unbiased_raw * 1e4).round() / 1e4),
        }
    }
}

/// The raw threshold keeping exactly as many detections as there are
/// people: midway between the `people`-th and the next score.
pub fn unbiased_threshold(scored: &[(f32, bool)], people: usize) -> f64 {
    let mut scores: Vec<f64> = scored.iter().map(|s| f64::from(s.0)).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    match (
        people.checked_sub(1).and_then(|i| scores.get(i)),
        scores.get(people),
    ) {
        (Some(&a), Some(&b)) => (a + b) / 2.0,
        // Fewer detections than people: keep them all.
        (_, None) => scores.last().copied().unwrap_or(0.5) * 0.99,
        (None, Some(&b)) => (b + 1.0) / 2.0,
    }
}

/// The slope `a` of `P(person | raw) = σ(a · logit(raw) + b)`, fitted by
/// Newton's method on the log-likelihood (with a weak prior that keeps it
/// finite on separable data); 1 when the fit is not positive.
fn platt_slope(scored: &[(f32, bool)]) -> f64 {
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let prior = 1e-3;
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
            (-prior * (a - 1.0), -prior * b, prior, 0.0, prior);
        for &(s, tp) in scored {
            let x = logit(f64::from(s));
            let p = sigmoid(a * x + b);
            let y = if tp { 1.0 } else { 0.0 };
            ga += (y - p) * x;
            gb += y - p;
            let w = p * (1.0 - p);
            haa += w * x * x;
            hab += w * x;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a += da;
        b += db;
        if da.abs() + db.abs() < 1e-9 {
            break;
        }
    }
    if a.is_finite() && a > 0.05 { a } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_undoes_the_map_and_order_is_kept() {
        let c = Calibration {
            slope: 1.7,
            offset: 0.9,
            fitted_on: None,
            unbiased_raw: None,
        };
        let mut last = 0.0;
        for i in 1..100 {
            let raw = i as f32 / 100.0;
            let conf = c.confidence(raw);
            assert!(conf > last, "monotone at {raw}");
            last = conf;
            assert!((c.raw_threshold(conf) - raw).abs() < 1e-5);
        }
        assert_eq!(Calibration::identity().confidence(0.37), 0.37);
    }

    #[test]
    fn the_fit_puts_the_unbiased_raw_score_at_the_default_threshold() {
        // 10 people; detections at 0.9 .. 0.05, the top 8 and one at 0.35 are people.
        let scored: Vec<(f32, bool)> = (0..18)
            .map(|i| {
                let s = 0.9 - i as f32 * 0.05;
                (s, i < 8 || i == 11)
            })
            .collect();
        let c = Calibration::fit(&scored, 10, "test");
        // The 10th and 11th scores are 0.45 and 0.40.
        assert!((c.unbiased_raw.unwrap() - 0.425).abs() < 1e-6);
        assert!((c.confidence(0.425) - 0.6).abs() < 1e-4);
        assert!(c.slope > 0.0);
        let kept = scored.iter().filter(|s| c.confidence(s.0) >= 0.6).count();
        assert_eq!(kept, 10, "as many kept at 0.6 as there are people");
    }

    #[test]
    fn a_stored_calibration_is_read_and_a_bad_one_refused() {
        let dir = std::env::temp_dir().join(format!("calib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("m.onnx");
        assert!(Calibration::load_beside(&model).unwrap().is_none());
        std::fs::write(
            dir.join("m.calibration.json"),
            r#"{"slope":2.0,"offset":0.5}"#,
        )
        .unwrap();
        let c = Calibration::load_beside(&model).unwrap().unwrap();
        assert_eq!((c.slope, c.offset), (2.0, 0.5));
        std::fs::write(dir.join("m.calibration.json"), r#"{"slope":-1,"offset":0}"#).unwrap();
        assert!(Calibration::load_beside(&model).is_err());
        // Another input size reads its own file.
        let size = InputSize {
            height: 448,
            width: 576,
        };
        let sized = Calibration::path_for(&model, Some(size));
        assert_eq!(sized, dir.join("m.448x576.calibration.json"));
        assert_eq!(
            Calibration::path_for(&model, None),
            dir.join("m.calibration.json")
        );
        assert!(Calibration::load(&sized).unwrap().is_none());
        std::fs::remove_dir_all(dir).ok();
    }
}

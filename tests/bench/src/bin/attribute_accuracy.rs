//! Person attribute accuracy: the clothing colour names the pipeline gives
//! (`panoptes_workers::attributes::describe`, as the detector runs it) for
//! the hand-labelled people of `tests/accuracy/attributes/labels.json`, as
//! the share correct for the upper colour, the lower colour and both, by
//! the label alone (strict) and by the label or an alternative the labeller
//! also accepted (`upperAlso`, `lowerAlso`: dark brown or black, say), with
//! the confusions. A person the pipeline does not describe (box too small)
//! counts as wrong.
//!   attribute-accuracy [--set tests/accuracy] [--verbose] [--json OUT]

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use panoptes_shared::domain::attribute::ColorName;
use panoptes_shared::domain::detection::BoundingBox;
use panoptes_workers::attributes::describe;
use panoptes_workers::image::decode_jpeg;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The evaluation set: `attributes/labels.json` and the images it names.
    #[arg(long, default_value = "tests/accuracy")]
    set: PathBuf,
    /// Print every person: the labels and what was named.
    #[arg(long)]
    verbose: bool,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One labelled person: the accepted names per region, the label first.
struct Person {
    image: String,
    bbox: BoundingBox,
    upper: Vec<ColorName>,
    lower: Vec<ColorName>,
}

/// Correct counts: strict (the label) and lenient (any accepted name).
#[derive(Default, Clone, Copy)]
struct Score {
    strict: u32,
    lenient: u32,
}

impl Score {
    fn add(&mut self, accepted: &[ColorName], named: Option<ColorName>) {
        self.strict += u32::from(named == accepted.first().copied());
        self.lenient += u32::from(named.is_some_and(|n| accepted.contains(&n)));
    }
}

fn colors(p: &Value, label: &str, also: &str) -> anyhow::Result<Vec<ColorName>> {
    let name = |v: &Value| {
        v.as_str()
            .and_then(ColorName::parse)
            .with_context(|| format!("`{v}` is not a colour name"))
    };
    let mut out = vec![name(&p[label])?];
    for v in p[also].as_array().into_iter().flatten() {
        out.push(name(v)?);
    }
    Ok(out)
}

fn people(labels: &Value) -> anyhow::Result<Vec<Person>> {
    let mut out = Vec::new();
    for frame in labels["frames"].as_array().context("`frames`")? {
        let image = frame["image"].as_str().context("`image`")?.to_owned();
        for p in frame["people"].as_array().context("`people`")? {
            let b: Vec<f32> = p["box"]
                .as_array()
                .context("`box`")?
                .iter()
                .map(|v| v.as_f64().map(|v| v as f32))
                .collect::<Option<_>>()
                .context("`box` numbers")?;
            let [x, y, width, height] = b[..] else {
                bail!("a `box` is [x, y, width, height]");
            };
            out.push(Person {
                image: image.clone(),
                bbox: BoundingBox {
                    x,
                    y,
                    width,
                    height,
                },
                upper: colors(p, "upper", "upperAlso")?,
                lower: colors(p, "lower", "lowerAlso")?,
            });
        }
    }
    Ok(out)
}

fn pct(n: u32, of: usize) -> String {
    format!(
        "{n}/{of} ({:.1} %)",
        f64::from(n) * 100.0 / of.max(1) as f64
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let path = args.set.join("attributes/labels.json");
    let labels: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?,
    )?;
    let people = people(&labels)?;
    let (mut upper, mut lower, mut both) = (Score::default(), Score::default(), Score::default());
    let mut undescribed = 0;
    let mut confusions: BTreeMap<(&str, &str, &str), u32> = BTreeMap::new();
    let mut frames = BTreeMap::new();
    let mut rows = Vec::new();
    for p in &people {
        if !frames.contains_key(&p.image) {
            let bytes = std::fs::read(args.set.join(&p.image)).with_context(|| p.image.clone())?;
            frames.insert(p.image.clone(), decode_jpeg(&bytes)?);
        }
        let named = describe(&frames[&p.image], &p.bbox);
        let (u, l) = (named.map(|a| a.upper_color), named.map(|a| a.lower_color));
        undescribed += u32::from(named.is_none());
        upper.add(&p.upper, u);
        lower.add(&p.lower, l);
        both.strict += u32::from(u == Some(p.upper[0]) && l == Some(p.lower[0]));
        both.lenient += u32::from(
            u.is_some_and(|u| p.upper.contains(&u)) && l.is_some_and(|l| p.lower.contains(&l)),
        );
        let shown = |c: Option<ColorName>| c.map_or("(none)", ColorName::as_str);
        for (region, accepted, got) in [("upper", &p.upper, u), ("lower", &p.lower, l)] {
            if got != Some(accepted[0]) {
                *confusions
                    .entry((region, accepted[0].as_str(), shown(got)))
                    .or_default() += 1;
            }
        }
        let names = |c: &[ColorName]| c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("|");
        rows.push(json!({
            "image": p.image,
            "box": [p.bbox.x, p.bbox.y, p.bbox.width, p.bbox.height],
            "upper": names(&p.upper),
            "lower": names(&p.lower),
            "named": named.map(|a| serde_json::to_value(a).unwrap_or_default()),
        }));
        if args.verbose {
            println!(
                "{:<28} upper {:<12} -> {:<7} lower {:<12} -> {}",
                p.image,
                names(&p.upper),
                shown(u),
                names(&p.lower),
                shown(l)
            );
        }
    }
    let n = people.len();
    println!(
        "person attributes: {n} labelled people in {} frames ({})",
        frames.len(),
        path.display()
    );
    println!(
        "{:<8}{:<22}label or an accepted alternative",
        "", "strict (the label)"
    );
    for (name, s) in [("upper", upper), ("lower", lower), ("both", both)] {
        println!("{name:<8}{:<22}{}", pct(s.strict, n), pct(s.lenient, n));
    }
    // What naming every person with the most common labels would score:
    // the set is mostly black jackets and blue jeans.
    let majority = |labels: Vec<ColorName>| {
        let mut counts: BTreeMap<ColorName, u32> = BTreeMap::new();
        labels
            .iter()
            .for_each(|c| *counts.entry(*c).or_default() += 1);
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(c, n)| format!("{} {}", c.as_str(), pct(n, labels.len())))
            .unwrap_or_default()
    };
    println!(
        "baseline, the most common label for everyone: upper {}, lower {}",
        majority(people.iter().map(|p| p.upper[0]).collect()),
        majority(people.iter().map(|p| p.lower[0]).collect())
    );
    println!("not described (box too small): {undescribed}");
    println!("confusions (region: label -> named, against the label):");
    let mut sorted: Vec<_> = confusions.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for ((region, want, got), count) in &sorted {
        println!("  {region}: {want} -> {got}  x{count}");
    }
    if let Some(out) = &args.json {
        let score = |s: Score| json!({ "strict": s.strict, "lenient": s.lenient });
        let report = json!({
            "people": n,
            "frames": frames.len(),
            "upper": score(upper),
            "lower": score(lower),
            "both": score(both),
            "undescribed": undescribed,
            "confusions": sorted.iter().map(|((r, w, g), c)| json!({
                "region": r, "label": w, "named": g, "count": c,
            })).collect::<Vec<_>>(),
            "rows": rows,
        });
        std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

//! Our detector pipeline on a folder of JPEG frames: decode (libjpeg-turbo),
//! pre-process, infer (ONNX Runtime), post-process, in batches of `--batch`,
//! exactly the functions the detect role runs. Prints one JSON line:
//! frames/s, ms per frame p50/p99, and the pre/inference/post split.
//!   detect-bench --frames DIR --threads 2 --batch 4 [--model M --library L]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use panoptes_shared::domain::scene::DetectClass;
use panoptes_workers::image::decode_all;
use panoptes_workers::inference::Wanted;
use panoptes_workers::inference::engine::{
    Engine, EngineOptions, ExecutionProvider, FrameIn, ModelKind, Provider,
};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    frames: PathBuf,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value = "workers/models/nanodet-m-416.onnx")]
    model: PathBuf,
    /// libonnxruntime; default ORT_DYLIB_PATH.
    #[arg(long)]
    library: Option<PathBuf>,
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    provider: ExecutionProvider,
    /// Batches in flight at once, as the detect role runs them
    /// (`detector.concurrency`, default 1): one decodes while another infers.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Batches run before timing starts.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&args.frames)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    paths.sort();
    let jpegs: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    anyhow::ensure!(
        !jpegs.is_empty(),
        "no .jpg frames in {}",
        args.frames.display()
    );
    let engine = Engine::load(&EngineOptions {
        model: ModelKind::NanoDet,
        model_path: args.model.clone(),
        library: args.library.clone(),
        provider: Provider::new(args.provider, 0),
        threads: args.threads,
        iou: 0.5,
        calibrated: true,
        input_size: None,
    })
    .context("loading the detector")?;
    let wanted = Wanted {
        class: DetectClass::Person,
        min_confidence: 0.4,
    };
    let run = |batch: &[Vec<u8>]| -> anyhow::Result<(f64, f64, f64, f64, usize)> {
        let t0 = Instant::now();
        let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let frames = decode_all(&slices)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let decode_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let input: Vec<FrameIn<'_>> = frames
            .iter()
            .map(|f| FrameIn { frame: f, wanted })
            .collect();
        let (results, t) = engine.detect(&input)?;
        let people = results
            .into_iter()
            .map(|r| r.map(|f| f.len()).unwrap_or(0))
            .sum();
        Ok((
            decode_ms + t.preprocess_ms,
            t.inference_ms,
            t.postprocess_ms,
            t0.elapsed().as_secs_f64() * 1000.0,
            people,
        ))
    };
    for chunk in jpegs.chunks(args.batch).take(args.warmup) {
        run(chunk)?;
    }
    let chunks: Vec<&[Vec<u8>]> = jpegs.chunks(args.batch).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let timed: Vec<(f64, f64, f64, f64, usize, usize)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..args.concurrency.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<_>> {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(chunk) = chunks.get(i) else {
                            return Ok(out);
                        };
                        let (p, inf, q, total, n) = run(chunk)?;
                        out.push((p, inf, q, total, n, chunk.len()));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("bench thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect())
    })?;
    let (mut per_frame, mut pre, mut infer, mut post, mut people) = (Vec::new(), 0.0, 0.0, 0.0, 0);
    for (p, i, q, total, n, len) in timed {
        pre += p;
        infer += i;
        post += q;
        people += n;
        per_frame.extend(std::iter::repeat_n(total / len as f64, len));
    }
    let wall = started.elapsed().as_secs_f64();
    per_frame.sort_by(f64::total_cmp);
    let total = pre + infer + post;
    println!(
        "{}",
        serde_json::json!({
            "pipeline": "rust",
            "provider": format!("{:?}", engine.provider()),
            "batch": args.batch,
            "threads": args.threads,
            "concurrency": args.concurrency,
            "frames": jpegs.len(),
            "fps": jpegs.len() as f64 / wall,
            "p50_ms": percentile(&per_frame, 0.5),
            "p99_ms": percentile(&per_frame, 0.99),
            "pre_share": pre / total,
            "infer_share": infer / total,
            "post_share": post / total,
            "people": people,
        })
    );
    Ok(())
}

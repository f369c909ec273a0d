//! `ingest-bench`: what one H.264 camera costs the ingest role.
//!
//! - `decode FILE.h264`: OpenH264 (the ingest decoder) on an Annex B file,
//!   one thread, as fast as it goes: frames/s and CPU ms per frame.
//! - `pull URL --streams K --seconds T`: K concurrent RTSP sessions of the
//!   ingest role's source (retina + OpenH264), each decoding every frame in
//!   real time and sampling `--fps` frames/s through the same resize + JPEG
//!   encode as the role: process CPU seconds per stream-second.
//!
//! Prints one JSON object; `tests/bench/ingest.sh` runs both against the
//! 720p and 1080p clips next to an ffmpeg reference decode.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use panoptes_workers::image::{encode_jpeg, resize};
use panoptes_workers::ingest::source;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    Decode {
        file: std::path::PathBuf,
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    Pull {
        url: String,
        #[arg(long, default_value_t = 1)]
        streams: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 2.0)]
        fps: f64,
        #[arg(long, default_value_t = 1280)]
        max_width: usize,
    },
}

/// CPU seconds (user + system) of this process so far, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: utime is the 14th field, stime the 15th.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn decode(file: &std::path::Path, rounds: usize) -> anyhow::Result<serde_json::Value> {
    let data = std::fs::read(file)?;
    let (mut frames, started, cpu0) = (0u64, Instant::now(), cpu_seconds());
    let mut size = (0, 0);
    for _ in 0..rounds {
        let mut d = openh264::decoder::Decoder::new()?;
        for nal in openh264::nal_units(&data) {
            if let Ok(Some(yuv)) = d.decode(nal) {
                use openh264::formats::YUVSource;
                size = yuv.dimensions();
                frames += 1;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    Ok(serde_json::json!({
        "mode": "decode", "width": size.0, "height": size.1, "frames": frames,
        "seconds": wall, "fps": frames as f64 / wall, "cpu_ms_per_frame": cpu * 1000.0 / frames.max(1) as f64,
    }))
}

async fn pull(
    url: &str,
    streams: usize,
    seconds: u64,
    fps: f64,
    max_width: usize,
) -> anyhow::Result<serde_json::Value> {
    let url = url::Url::parse(url)?;
    let mut tasks = Vec::new();
    // Connect every stream first, then measure a steady window.
    let mut opened = Vec::new();
    // The benchmark's camera is usually on this machine or the LAN.
    let dialer = panoptes_infra::camera::Dialer::new(
        std::sync::Arc::new(panoptes_shared::outbound::OutboundGuard::new(
            std::sync::Arc::new(panoptes_infra::resolver::SystemResolver),
            true,
        )),
        panoptes_infra::camera::Tls::system(),
    );
    let camera = panoptes_infra::camera::Camera::without_credentials(url);
    for _ in 0..streams {
        opened.push(source::open(&camera, Duration::from_secs(10), &dialer).await?);
    }
    let (cpu0, started) = (cpu_seconds(), Instant::now());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    for mut s in opened {
        tasks.push(tokio::spawn(async move {
            let period = (1000.0 / fps) as u64;
            let (mut next_due, mut decoded, mut sampled, mut bytes) = (0u64, 0u64, 0u64, 0u64);
            while tokio::time::Instant::now() < deadline {
                let f = match s
                    .next_frame(Duration::from_secs(5), |at| at >= next_due)
                    .await
                {
                    Ok(f) => f,
                    Err(panoptes_shared::domain::camera::SourceError::Decode) => continue,
                    Err(e) => return Err(anyhow::anyhow!("{e}")),
                };
                decoded += 1;
                let Some(rgb) = f.rgb else { continue };
                next_due = (next_due + period).max(f.captured_at_ms + period / 2);
                let jpeg = tokio::task::spawn_blocking(move || {
                    let rgb = if rgb.width > max_width {
                        let h = (rgb.height * max_width).div_ceil(rgb.width);
                        resize(&rgb, max_width, h)
                    } else {
                        rgb
                    };
                    encode_jpeg(&rgb, 85)
                })
                .await??;
                sampled += 1;
                bytes += jpeg.len() as u64;
            }
            Ok::<_, anyhow::Error>((decoded, sampled, bytes, s.info().clone()))
        }));
    }
    let (mut decoded, mut sampled, mut bytes, mut info) = (0, 0, 0, None);
    for t in tasks {
        let (d, s, b, i) = t.await??;
        (decoded, sampled, bytes) = (decoded + d, sampled + s, bytes + b);
        info = Some(i);
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let info = info.expect("at least one stream");
    Ok(serde_json::json!({
        "mode": "pull", "streams": streams, "width": info.width, "height": info.height,
        "seconds": wall, "decoded_fps_per_stream": decoded as f64 / wall / streams as f64,
        "sampled_fps_per_stream": sampled as f64 / wall / streams as f64,
        "jpeg_kb": bytes as f64 / sampled.max(1) as f64 / 1024.0,
        "cpu_cores_per_stream": cpu / wall / streams as f64,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = match Args::parse().mode {
        Mode::Decode { file, rounds } => decode(&file, rounds)?,
        Mode::Pull {
            url,
            streams,
            seconds,
            fps,
            max_width,
        } => pull(&url, streams, seconds, fps, max_width).await?,
    };
    println!("{out}");
    Ok(())
}

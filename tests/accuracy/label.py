"""Builds the labelled evaluation set: extracts frames, proposes person boxes
with the detector at a low threshold (whole frame, 2x tiles, mirrored), renders
them numbered for review, and applies the reviewer's decisions.

usage (onnxruntime==1.31.1, numpy, pillow; the test script's venv has them):
  python label.py extract VTEST_AVI            frames of vtest.avi -> images/vtest/
  python label.py extract-market SAMPLE_MP4    frames of the Market Street clip -> images/market/
  python label.py propose OUT.json IMAGE...    candidate boxes per image
  python label.py render PROPOSALS.json DIR    one PNG per image: candidates numbered
  python label.py zoom PROPOSALS.json NAME X1 Y1 X2 Y2 OUT.png   a region at 4x
  python label.py apply PROPOSALS.json DECISIONS.json   -> labels.json (merged)
  python label.py review DIR                   the final labels drawn, for checking

Decisions per image: {"keep": [ids], "add": [[x1,y1,x2,y2], ...],
"fix": {"id": [x1,y1,x2,y2]}}; a candidate not kept is not a person.
"""
import io
import json
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "workers" / "tests" / "fixtures"))
import reference  # noqa: E402  (the Python NanoDet pipeline)

LABELS = HERE / "labels.json"
# Every 6th frame of the 795, from frame 3: the whole clip.
VTEST_FRAMES = list(range(3, 795, 6))
# Each source's queue zone (normalised four-point polygon; a person is in it
# when the bottom-centre of their box is).
ZONES = {
    "vtest": [[0.60, 0.30], [1.0, 0.30], [1.0, 0.80], [0.60, 0.80]],
    "market": [[0.0, 0.55], [1.0, 0.55], [1.0, 1.0], [0.0, 1.0]],
}
# Per source: people were labelled down to this height (pixels); shorter
# detections are left out of the evaluation (neither hit nor false alarm).
MIN_HEIGHT = {"market": 25}


def split_of(name):
    """Calibration is fitted on "fit" images only; the accuracy check reports
    "test" images. vtest: alternate blocks of 100 frames (neighbouring frames
    look alike, so a block stays on one side); other sources: alternate
    images in name order."""
    source, file = name.split("/")
    if source == "vtest":
        return "fit" if int(file[6:10]) // 100 % 2 == 0 else "test"
    return None


def extract(avi):
    out = HERE / "images" / "vtest"
    out.mkdir(parents=True, exist_ok=True)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", avi, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout
    w, h = 768, 576
    frames = len(raw) // (w * h * 3)
    for n in VTEST_FRAMES:
        assert n < frames, (n, frames)
        px = np.frombuffer(raw, np.uint8, w * h * 3, n * w * h * 3).reshape(h, w, 3)
        Image.fromarray(px).save(out / f"vtest-{n:04d}.jpg", quality=80)
    print(f"{len(VTEST_FRAMES)} of {frames} frames -> {out}")


def extract_market(mp4):
    """One frame every 2 s of the Market Street clip, pillarbox cropped."""
    out = HERE / "images" / "market"
    out.mkdir(parents=True, exist_ok=True)
    w, h = 528, 352
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", mp4, "-vf", f"fps=1/2,crop={w}:{h}:56:4",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout
    n = len(raw) // (w * h * 3)
    for i in range(n):
        px = np.frombuffer(raw, np.uint8, w * h * 3, i * w * h * 3).reshape(h, w, 3)
        Image.fromarray(px).save(out / f"market-{2 * i:02d}s.jpg", quality=85)
    print(f"{n} frames -> {out}")


def raw_detect(sess, im, threshold):
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    x, w, h = reference.preprocess(buf.getvalue())
    outs = sess.run(None, {"input_1:0": x[None]})
    return reference.postprocess([o[0] for o in outs], w, h, threshold=threshold)


def propose_one(sess, path):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    found = [(s, x1, y1, x2, y2, "full") for s, x1, y1, x2, y2 in raw_detect(sess, im, 0.12)]
    mirrored = raw_detect(sess, im.transpose(Image.FLIP_LEFT_RIGHT), 0.12)
    found += [(s, w - x2, y1, w - x1, y2, "flip") for s, x1, y1, x2, y2 in mirrored]
    # 2x2 overlapping tiles, each upscaled to the model: small people grow.
    tw, th = int(w * 0.6), int(h * 0.6)
    for ox in (0, w - tw):
        for oy in (0, h - th):
            tile = im.crop((ox, oy, ox + tw, oy + th))
            for s, x1, y1, x2, y2 in raw_detect(sess, tile, 0.2):
                found.append((s, x1 + ox, y1 + oy, x2 + ox, y2 + oy, "tile"))
    if not found:
        return []
    b = np.array([f[1:5] for f in found], np.float32)
    s = np.array([f[0] for f in found], np.float32)
    keep = reference.nms(b, s, 0.45)
    return [
        {"id": i, "score": round(float(s[k]), 3), "via": found[k][5],
         "box": [round(float(v), 1) for v in b[k]]}
        for i, k in enumerate(keep)
    ]


def propose(out, paths):
    sess = reference.session()
    result = {}
    for p in paths:
        result[str(pathlib.Path(p).resolve().relative_to(HERE / "images"))] = propose_one(sess, p)
    pathlib.Path(out).write_text(json.dumps(result, indent=1))
    print(f"{sum(map(len, result.values()))} candidates in {len(result)} images -> {out}")


def draw(im, boxes, scale=1.6, grid=True, region=None):
    """boxes: [(label, [x1,y1,x2,y2], colour)] in image pixels; `region`
    (x1, y1, x2, y2) crops before scaling."""
    ox, oy = (region[0], region[1]) if region else (0, 0)
    if region:
        im = im.crop(region)
    big = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
    d = ImageDraw.Draw(big)
    font = ImageFont.load_default(size=15)
    if grid:
        step = 50 if scale < 3 else 10
        for x in range(ox - ox % step + step, ox + im.width, step):
            d.line([((x - ox) * scale, 0), ((x - ox) * scale, 8)], fill=(255, 255, 0), width=2)
            d.text(((x - ox) * scale + 2, 10), str(x), fill=(255, 255, 0), font=font)
        for y in range(oy - oy % step + step, oy + im.height, step):
            d.line([(0, (y - oy) * scale), (8, (y - oy) * scale)], fill=(255, 255, 0), width=2)
            d.text((10, (y - oy) * scale + 2), str(y), fill=(255, 255, 0), font=font)
    for label, (x1, y1, x2, y2), colour in boxes:
        r = [(x1 - ox) * scale, (y1 - oy) * scale, (x2 - ox) * scale, (y2 - oy) * scale]
        d.rectangle(r, outline=colour, width=2)
        tb = d.textbbox((r[0], r[1] - 17), label, font=font)
        d.rectangle(tb, fill=(0, 0, 0))
        d.text((r[0], r[1] - 17), label, fill=colour, font=font)
    return big


def colour(score):
    return (0, 255, 0) if score >= 0.5 else (255, 160, 0) if score >= 0.3 else (255, 0, 255)


def render(proposals, out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, cands in json.loads(pathlib.Path(proposals).read_text()).items():
        im = Image.open(HERE / "images" / name).convert("RGB")
        boxes = [(str(c["id"]), c["box"], colour(c["score"])) for c in cands]
        draw(im, boxes).save(out / (pathlib.Path(name).stem + ".png"))


def zoom(proposals, name, x1, y1, x2, y2, out):
    """A region of one image at 4x with its candidates: for small people."""
    cands = json.loads(pathlib.Path(proposals).read_text())[name]
    im = Image.open(HERE / "images" / name).convert("RGB")
    boxes = [(str(c["id"]), c["box"], colour(c["score"])) for c in cands]
    draw(im, boxes, scale=4, region=tuple(int(v) for v in (x1, y1, x2, y2))).save(out)


def apply(proposals, decisions):
    props = json.loads(pathlib.Path(proposals).read_text())
    dec = json.loads(pathlib.Path(decisions).read_text())
    labels = json.loads(LABELS.read_text()) if LABELS.exists() else {"images": {}}
    labels["zones"] = ZONES
    for name, d in dec.items():
        cands = {c["id"]: c["box"] for c in props[name]}
        people = [d.get("fix", {}).get(str(i), cands[i]) for i in d.get("keep", [])]
        people += d.get("add", [])
        entry = labels["images"].setdefault(name, {})
        entry["people"] = [[round(float(v), 1) for v in b] for b in people]
    labels["images"] = dict(sorted(labels["images"].items()))
    others = {}
    for name, entry in labels["images"].items():
        entry["split"] = split_of(name)
        if entry["split"] is None:
            others.setdefault(name.split("/")[0], []).append(entry)
    for entries in others.values():
        for i, entry in enumerate(entries):
            entry["split"] = "fit" if i % 2 == 0 else "test"
    labels = {"zones": labels["zones"], "images": {
        k: {"split": v["split"], "people": v["people"]} for k, v in labels["images"].items()}}
    write_labels(labels)
    print(f"{len(dec)} images decided; {len(labels['images'])} labelled in {LABELS}")


def write_labels(labels):
    """One line per image, so a change to one image is a one-line diff."""
    lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in labels["images"].items())
    LABELS.write_text('{\n "zones": ' + json.dumps(labels["zones"])
                      + ',\n "minHeight": ' + json.dumps(MIN_HEIGHT) + ',\n "images": {\n'
                      + lines + "\n }\n}\n")


def review(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = json.loads(LABELS.read_text())
    for name, entry in labels["images"].items():
        im = Image.open(HERE / "images" / name).convert("RGB")
        boxes = [(str(i), b, (0, 255, 0)) for i, b in enumerate(entry["people"])]
        draw(im, boxes, grid=False).save(out / (pathlib.Path(name).stem + ".png"))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"extract": lambda: extract(*args), "extract-market": lambda: extract_market(*args),
     "propose": lambda: propose(args[0], args[1:]),
     "render": lambda: render(*args), "zoom": lambda: zoom(*args), "apply": lambda: apply(*args),
     "review": lambda: review(*args)}[cmd]()

#!/usr/bin/env python3
"""Checks the container images' Dockerfiles without Docker (it cannot run here).

For every deploy/docker/*.Dockerfile:
- each file or folder copied from the build context exists and is not left
  out by .dockerignore;
- each `cargo build -p PKG --bin BIN` names a binary of that workspace
  package, and the binary it installs under /out is the one built;
- each absolute path the final image is told about (ENTRYPOINT, HEALTHCHECK,
  PANOPTES__* values) is a file the final stage copies in;
- the entrypoint with its default command, and the health check, parse with
  the real binaries' command lines (`BIN ARGS --help` exits 0);
- the PANOPTES__* settings the image sets are real settings
  (`panoptes check-config` with them set finds no unknown key).

    python3 tests/deploy/dockerfiles.py --bin-dir target/debug
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAILURES: list[str] = []


def fail(dockerfile: Path, message: str) -> None:
    name = dockerfile.relative_to(ROOT) if dockerfile.is_relative_to(ROOT) else dockerfile.name
    FAILURES.append(f"{name}: {message}")


@dataclass
class Stage:
    name: str | None
    base: str
    runs: list[str] = field(default_factory=list)
    # (from-stage or None for the context, sources, destination)
    copies: list[tuple[str | None, list[str], str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def exec_form(args: str) -> list[str]:
    args = args.strip()
    if args.startswith("["):
        return json.loads(args)
    return ["/bin/sh", "-c", args]


def parse(path: Path) -> list[Stage]:
    stages: list[Stage] = []
    for word, rest in instructions(path.read_text()):
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(name=name, base=parts[0]))
        elif word == "RUN":
            stages[-1].runs.append(rest)
        elif word == "COPY":
            tokens = shlex.split(rest)
            source = None
            while tokens and tokens[0].startswith("--"):
                flag = tokens.pop(0)
                if flag.startswith("--from="):
                    source = flag.split("=", 1)[1]
            stages[-1].copies.append((source, tokens[:-1], tokens[-1]))
        elif word == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                stages[-1].env[key] = value
        elif word == "ENTRYPOINT":
            stages[-1].entrypoint = exec_form(rest)
        elif word == "CMD":
            stages[-1].cmd = exec_form(rest)
        elif word == "HEALTHCHECK":
            _, _, command = rest.partition("CMD ")
            stages[-1].healthcheck = exec_form(command)
    return stages


def ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") or fnmatch.fnmatch(path, p + "/*")
        for p in patterns
    )


def workspace_bins() -> dict[str, set[str]]:
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--locked"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    return {
        p["name"]: {t["name"] for t in p["targets"] if "bin" in t["kind"]}
        for p in meta["packages"]
    }


def placed_files(final: Stage, stages: dict[str, Stage]) -> set[str]:
    """Absolute paths of the files the final stage copies in."""
    placed = set()
    for origin, sources, dest in final.copies:
        for source in sources:
            if dest.endswith("/"):
                if source.endswith("/"):
                    # A folder's content: the files its stage's RUN wrote there.
                    stage = stages.get(origin or "")
                    written = " ".join(stage.runs) if stage else ""
                    for name in re.findall(r"([A-Za-z0-9_.+-]+\.so[.0-9]*)", written):
                        placed.add(dest + name)
                else:
                    placed.add(dest + Path(source).name)
            else:
                placed.add(dest)
    return placed


def check(path: Path, bins: dict[str, set[str]], bin_dir: Path, dockerignore: list[str]) -> None:
    stages = parse(path)
    named = {s.name: s for s in stages if s.name}
    final = stages[-1]
    built: set[str] = set()
    for stage in stages:
        for run in stage.runs:
            for pkg, binary in re.findall(r"cargo build [^&]*?-p (\S+) --bin (\S+)", run):
                if binary not in bins.get(pkg, set()):
                    fail(path, f"`cargo build -p {pkg} --bin {binary}`: no such binary in the workspace")
                built.add(binary)
                if f"target/release/{binary} /out/{binary}" not in run:
                    fail(path, f"{binary} is built but not installed to /out/{binary}")
        for origin, sources, _ in stage.copies:
            if origin is not None:
                if origin not in named:
                    fail(path, f"COPY --from={origin}: no such stage")
                continue
            for source in sources:
                if not (ROOT / source).exists():
                    fail(path, f"COPY {source}: not in the repository")
                elif ignored(source.rstrip("/"), dockerignore):
                    fail(path, f"COPY {source}: left out of the build context by .dockerignore")
    placed = placed_files(final, named)
    for origin, sources, _ in final.copies:
        if origin in named and named[origin].runs:
            for source in sources:
                if source.startswith("/out/") and not source.endswith("/"):
                    name = Path(source).name
                    if name not in built and name not in " ".join(named[origin].runs):
                        fail(path, f"COPY --from={origin} {source}: that stage does not write it")
    entry = final.entrypoint + final.cmd
    if not entry:
        fail(path, "no ENTRYPOINT")
        return
    for label, command in (("ENTRYPOINT + CMD", entry), ("HEALTHCHECK", final.healthcheck)):
        if not command:
            fail(path, f"no {label}")
            continue
        if command[0] not in placed:
            fail(path, f"{label} runs {command[0]}, which the image does not contain")
            continue
        binary = bin_dir / Path(command[0]).name
        if not binary.exists():
            fail(path, f"{binary} is not built (cargo build first)")
            continue
        done = subprocess.run([str(binary), *command[1:], "--help"], capture_output=True, text=True)
        if done.returncode != 0:
            fail(path, f"{label} `{' '.join(command[1:])}` is not a valid command line: {done.stderr.strip()}")
    for key, value in final.env.items():
        if key.startswith("PANOPTES__") and value.startswith("/opt/") and value not in placed:
            fail(path, f"{key}={value}: the image has no such file")
    settings = {k: v for k, v in final.env.items() if k.startswith("PANOPTES__")}
    if settings:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PANOPTES")}
        done = subprocess.run(
            [str(bin_dir / "panoptes"), "check-config"], env={**env, **settings}, capture_output=True, text=True
        )
        if done.returncode != 0:
            fail(path, f"its settings do not load: {done.stderr.strip()}")


# Broken copies of worker.Dockerfile the checks must each reject: (what, old
# text, new text, expected message).
BROKEN = [
    ("a file that is not there", "workers/models/nanodet-m-416.onnx \\", "workers/models/missing.onnx \\",
     "not in the repository"),
    ("a file .dockerignore leaves out", "COPY workers/models/nanodet-m-416.onnx", "COPY target /x\nCOPY workers/models/nanodet-m-416.onnx",
     "left out of the build context"),
    ("a binary the workspace lacks", "--bin panoptes \\", "--bin panoptes-nope \\", "no such binary"),
    ("a role the CLI lacks", '"--role", "detect"]', '"--role", "detector"]', "not a valid command line"),
    ("a health check flag the CLI lacks", '"healthcheck"]', '"healthcheck", "--gatewy"]', "not a valid command line"),
    ("a model the image lacks", "MODEL_PATH=/opt/panoptes/models/nanodet-m-416.onnx",
     "MODEL_PATH=/opt/panoptes/models/other.onnx", "the image has no such file"),
    ("a misspelt setting", "PANOPTES__LOG__FORMAT=json", "PANOPTES__LOG__FROMAT=json", "do not load"),
]


def self_check(bins: dict[str, set[str]], bin_dir: Path, dockerignore: list[str]) -> None:
    import tempfile

    original = (ROOT / "deploy" / "docker" / "worker.Dockerfile").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        for what, old, new, expected in BROKEN:
            if old not in original:
                sys.exit(f"self-check `{what}`: worker.Dockerfile no longer contains {old!r}")
            path = Path(tmp) / "worker.Dockerfile"
            path.write_text(original.replace(old, new, 1))
            FAILURES.clear()
            check(path, bins, bin_dir, dockerignore)
            if not any(expected in f for f in FAILURES):
                sys.exit(f"self-check `{what}` was not rejected with `{expected}`: {FAILURES}")
            print(f"ok    rejected as expected: {what}")
    FAILURES.clear()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "debug")
    args = parser.parse_args()
    dockerignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    bins = workspace_bins()
    bin_dir = args.bin_dir.resolve()
    self_check(bins, bin_dir, dockerignore)
    files = sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile"))
    if not files:
        sys.exit("no Dockerfiles under deploy/docker")
    for path in files:
        check(path, bins, bin_dir, dockerignore)
    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        sys.exit(1)
    print(f"dockerfiles: {len(files)} checked ({', '.join(p.name for p in files)}), {len(BROKEN)} broken copies rejected")


if __name__ == "__main__":
    main()

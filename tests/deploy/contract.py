"""The settings each process must get in production, as the binaries say
(`panoptes config-reference`, in the file PANOPTES_CONFIG_REFERENCE names;
.ci/lib.sh's export_config_reference writes it)."""

from __future__ import annotations

import json
import os

PROCESSES = ("gateway", "ingest", "detect", "analytics", "notify", "schedule")


def required() -> dict[str, dict[str, bool]]:
    """process -> {PANOPTES__SECTION__KEY: whether it is a secret}."""
    with open(os.environ["PANOPTES_CONFIG_REFERENCE"]) as f:
        reference = json.load(f)
    out: dict[str, dict[str, bool]] = {p: {} for p in PROCESSES}
    for r in reference["required"]:
        for process in r["processes"]:
            out[process][r["env"]] = bool(r["secret"])
    if not all(out.values()):
        raise SystemExit(f"the config reference names no setting for some process: {out}")
    return out

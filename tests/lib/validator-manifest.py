#!/usr/bin/env python3
# validator-manifest.py OUT: the manifest of the publisher's buggy validator in the replay of
# 2024-07-19 (docs/design.md): the general agent manifest (manifests/ringfence-agent-1.1.0.json)
# with a 21st-field stand-in, ChannelField21 (string), added to process_creation. No agent
# supplies that field. Tests that must get a pack needing it past `ringfence release create`
# (which verifies packs, docs/server.md "What release create checks") to show that the agents
# still refuse it (P1) give this file as `--manifest`: the validator believed the field existed.
import json, os, sys

src = os.environ.get("RF_SOURCE_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")
with open(os.path.join(src, "manifests", "ringfence-agent-1.1.0.json")) as f:
    m = json.load(f)
m["version"] = "1.1.0-validator-bug"
for ev in m["events"]:
    if ev["name"] == "process_creation":
        ev["fields"].append({"name": "ChannelField21", "type": "string"})
with open(sys.argv[1], "w") as f:
    json.dump(m, f, indent=2)

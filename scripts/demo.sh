#!/usr/bin/env bash
# The main job on the embedded default, offline: the synthetic benchmark through every stage that exists.
set -euo pipefail
DEMO_DIR=${DEMO_DIR:-work/demo}
VENV=${VENV:-.venv}
CLI="$VENV/bin/cogvision"
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"

echo "== 1. synthesise a benchmark with exact ground truth (cogvision synth)"
"$CLI" synth --variant cogvision --n 60 --seed 0 --out "$DEMO_DIR/synth"

echo "== 2. validate and count it (cogvision validate / stats)"
"$CLI" validate "$DEMO_DIR/synth/decompositions.jsonl"
"$CLI" stats "$DEMO_DIR/synth/decompositions.jsonl"

# -- decompose step goes here (scripted local OpenAI-compatible server)
# -- review step goes here (skipped in the demo with a one-line explanation)
echo "== publish the synthetic benchmark as a Hugging Face dataset, then re-load and check it (cogvision publish)"
"$CLI" publish --in "$DEMO_DIR/synth/decompositions.jsonl" --out "$DEMO_DIR/published" \
  --name cogvision --seed 0 --test-fraction 0.2
"$CLI" publish --check "$DEMO_DIR/published"
# -- harness steps go here

echo "== demo finished: outputs in $DEMO_DIR"

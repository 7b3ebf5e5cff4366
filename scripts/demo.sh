#!/usr/bin/env bash
# The main job on the embedded default, offline: the synthetic benchmark through every stage that exists.
set -euo pipefail
DEMO_DIR=${DEMO_DIR:-work/demo}
VENV=${VENV:-.venv}
CLI="$VENV/bin/cogvision"
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"

echo "== 1. synthesise a benchmark with exact ground truth (cogvision synth)"
echo "   96 px scenes on a 3x3 grid: the format the shipped model organism was trained on"
"$CLI" synth --variant cogvision --n 200 --seed 0 --image-size 96 --grid 3 --out "$DEMO_DIR/synth"

echo "== 2. validate and count it (cogvision validate / stats)"
"$CLI" validate "$DEMO_DIR/synth/decompositions.jsonl"
"$CLI" stats "$DEMO_DIR/synth/decompositions.jsonl"

echo "== 3. decompose the questions with an LLM (cogvision decompose)"
echo "   SCRIPTED DEMO MODEL: a local OpenAI-compatible server on 127.0.0.1 that answers from the"
echo "   synthetic ground truth in $DEMO_DIR/synth/decompositions.jsonl; it is not a real LLM."
echo "   Its scripted verifier answers 'cannot tell' to ~10% of sub-questions, to show the flagging."
if [ -n "${OPENAI_BASE_URL:-}${OPENAI_API_KEY:-}" ]; then
  echo "   (your OPENAI_* settings are not used here; for a real model run:"
  echo "    $CLI decompose --in $DEMO_DIR/synth/questions.jsonl --out $DEMO_DIR/decomposed-llm --model gpt-4.1)"
fi
PORT_FILE="$DEMO_DIR/.decompose-server.port"
"$VENV/bin/python" -m cogvision.testing.openai_server \
  --answers-from "$DEMO_DIR/synth/decompositions.jsonl" --verifier-error-rate 0.1 \
  --port-file "$PORT_FILE" >/dev/null &
DECOMPOSE_SERVER_PID=$!
trap 'kill "$DECOMPOSE_SERVER_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$PORT_FILE" ] && break; sleep 0.2; done
[ -s "$PORT_FILE" ] || { echo "the scripted demo server did not start" >&2; exit 1; }
OPENAI_API_KEY=scripted-demo-no-key OPENAI_BASE_URL= "$CLI" decompose \
  --in "$DEMO_DIR/synth/questions.jsonl" --out "$DEMO_DIR/decomposed" \
  --model scripted-demo-model --verify-model scripted-demo-verifier \
  --base-url "http://127.0.0.1:$(cat "$PORT_FILE")/v1" --cache-dir "$DEMO_DIR/llm-cache" \
  --concurrency 8
kill "$DECOMPOSE_SERVER_PID" 2>/dev/null || true
wait "$DECOMPOSE_SERVER_PID" 2>/dev/null || true
trap - EXIT
rm -f "$PORT_FILE"
"$CLI" validate "$DEMO_DIR/decomposed/decompositions.jsonl"

echo "== review: skipped in the demo (it needs people): run \`cogvision review serve\`, then \`cogvision review push/pull/status\` (see README, Review in Label Studio)"
echo "== publish the synthetic benchmark as a Hugging Face dataset, then re-load and check it (cogvision publish)"
"$CLI" publish --in "$DEMO_DIR/synth/decompositions.jsonl" --out "$DEMO_DIR/published" \
  --name cogvision --seed 0 --test-fraction 0.2
"$CLI" publish --check "$DEMO_DIR/published"
echo "== find functional heads and intervene on them (cogvision eval) on the shipped model organism"
echo "   models/organism-cogvision: a 1.8M-parameter LLaVA trained here on synthetic scenes (see"
echo "   benchmarks/organism.md: 96% of held-out sub-questions right). Heads are probed and selected on"
echo "   the train split only; masking functional vs random heads (3 seeds) and the cross-function"
echo "   matrix are scored on the test split by exact match."
OMP_NUM_THREADS=1 "$CLI" eval --model models/organism-cogvision --data "$DEMO_DIR/published" \
  --out "$DEMO_DIR/eval" -e masking -e cross --seeds 3 -C scoring.primary=exact_match
echo "   report: $DEMO_DIR/eval/report.md (tables, heatmaps, cross-function matrix)"

echo "== demo finished: outputs in $DEMO_DIR"

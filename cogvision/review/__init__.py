"""Human review in Label Studio (the paper's three verification stages, three reviewers per item).

- ``labelconfig``: the versioned label config (one Repeater block per sub-question) and the
  validation of exported results against it.
- ``server``: start/stop a local Label Studio bound to 127.0.0.1, by recorded PID.
- ``push``: idempotent push of decompositions as tasks with the LLM draft as pre-annotation.
- ``pull``: export, validate, aggregate (``aggregate``: the paper's rules, thresholds configurable)
  and write ``reviewed.jsonl``.
- ``status``: per-stage counts, per-reviewer progress, Krippendorff's alpha.

The Label Studio SDK is imported lazily (extra ``review``); the token comes from
``LABEL_STUDIO_API_KEY`` only.
"""

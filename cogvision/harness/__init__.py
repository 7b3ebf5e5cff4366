"""The harness: find and test functional attention heads of vision-language models.

Steps, each a function over typed artifacts: capture -> probe -> select (this package) ->
intervene -> score. Heavy dependencies (torch, transformers) are imported by the submodules only.
"""

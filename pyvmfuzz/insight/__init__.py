"""Insight into findings: `minimize` (ddmin to a 1-minimal interleaving), `cmin` (corpus
minimization over semantic features) and `explain` (timeline per CPU, text and HTML)."""

"""Benchmarks: trials and statistics (`trials.py`), the zoo benchmark (`zoobench.py`), the
random and Hypothesis baselines (`baselines.py`) and the semantic-coverage cost (`semcost.py`)."""

"""segsync's benchmarks: ``python -m benchmarks compute --purchases N`` (see benchmarks/compute.py)."""

"""neurogrip benchmarks: throughput, latency, footprint and accuracy against peers."""

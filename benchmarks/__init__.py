"""benchmarks: latency, accuracy and size trade-offs of exported models, measured side by side."""

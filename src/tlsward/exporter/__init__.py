"""The Prometheus exporter: inventory state and live probe statistics as metrics, for the stack teams run."""

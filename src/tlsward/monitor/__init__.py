"""The monitor: scheduled probes, alert evaluation, grouping, routing, silences and notifiers."""

"""Ring 2: probes. Each composes ring-1 capabilities into one question asked of one endpoint."""

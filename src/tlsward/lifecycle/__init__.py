"""Managed certificates: renew -> deploy -> reload -> verify, with rollback when the live endpoint does not serve
the new certificate."""

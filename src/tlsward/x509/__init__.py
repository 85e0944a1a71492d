"""Ring 1: an adapter over pyca/cryptography, so the rest of tlsward sees certificates as plain model data.

Nothing outside this package parses X.509: facts (``facts``), RFC 6125 name matching (``hostname``),
trust stores (``trust``) and RFC 5280 path validation with plain-English causes (``validate``).
It imports only ``tlsward.model``, cryptography, certifi and the standard library.
"""

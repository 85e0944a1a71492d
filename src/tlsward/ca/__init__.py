"""The internal CA: a root and an intermediate, server/client/mTLS profiles, revocation, CRLs and OCSP."""

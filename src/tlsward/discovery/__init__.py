"""Discovery: certificate and key files on disk, and TLS listeners on network ranges."""

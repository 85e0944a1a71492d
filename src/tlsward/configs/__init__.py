"""Server configs (nginx, Apache, HAProxy) read into the TLS listeners they declare, includes followed."""

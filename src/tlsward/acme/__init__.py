"""ACME (RFC 8555): the client (over certbot's ``acme`` package) and an ASGI server; a library that never imports the
app: the CA that signs and the state it keeps are handed in."""

"""OAuth 2.0 client credentials with a signed JWT (RFC 7523 `private_key_jwt`), the service's
access tokens, and verified user assertions (docs/authentication.md)."""

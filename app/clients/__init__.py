"""API clients managed over the API (admin scope) as well as the command line."""

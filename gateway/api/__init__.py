"""The gateway's HTTP API (aiohttp): app, middleware, auth, routes."""

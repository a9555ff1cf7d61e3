"""The bank simulator: its own aiohttp app and process (SPEC 9)."""

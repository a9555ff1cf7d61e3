"""The wire contract below every domain package: the request bodies (requests.py) that the
domain takes and the API decodes. Imports nothing of the domain or the HTTP layer."""

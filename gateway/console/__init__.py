"""The operator console (运营后台, SPEC 17): server-rendered pages at /console/ over the same
domain code as the `/admin` API."""

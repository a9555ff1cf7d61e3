"""Background workers: bank dispatch, status polling (notifications and clearing follow)."""

"""Accounts (三户, SPEC 16): customers, their accounts and sub-accounts, transfers, freezes."""

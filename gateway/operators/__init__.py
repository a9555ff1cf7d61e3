"""Operators (SPEC 17): people with a role, their audited actions, four-eyes approvals."""

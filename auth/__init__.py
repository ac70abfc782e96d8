"""Accounts, organisations, sign-in, invitations, tokens and the one permission module."""

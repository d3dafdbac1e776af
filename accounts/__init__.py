"""Accounts and API tokens: sign-up, sign-in, devices (tokens), authentication."""

"""Calling subscribers: the HTTP client (http.py) and which addresses it may call (target_policy.py)."""

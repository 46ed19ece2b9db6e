"""Subscribers built on the subscriber kit (gateway/subscriber/), each runnable on its own:
``python examples/sync_approver.py --port 9001 --secret whsec_...`` (or ``WEBHOOK_SECRET``)."""

"""Signed event notifications: subscriptions, the outbox, delivery with retries, event types."""

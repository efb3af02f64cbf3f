"""Authentication, rate limiting and idempotency: the stages of the gateway."""

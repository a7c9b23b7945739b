"""Pure risk rules (004 §6): the NPL circuit breaker, loss sharing and the yearly credit titles."""

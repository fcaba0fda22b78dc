"""The audit trail: who did or saw what, when, from where, with what outcome."""

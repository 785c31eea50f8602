"""The request: intake, the deadline board, lifecycle actions, the audit trail, the legal clock."""

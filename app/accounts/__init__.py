"""People's accounts for the console: officers and admins who log in with a password (and,
optionally, a TOTP code), their browser sessions and the limits on failed logins.

A person is not an API client: API clients keep their client credentials. A person acting in
the console acts as a ``Principal`` whose ``client_id`` is their user id (``usr_...``), so the
audit trail names them.
"""

"""Mail tests send through a real SMTP server on loopback, driven by an explicit worker."""

from tests.mail_fixtures import mail_sender, settings, smtp, worker  # noqa: F401 (fixtures)

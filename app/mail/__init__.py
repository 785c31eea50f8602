"""Messages to data subjects: templates, the mail outbox and the SMTP sender."""

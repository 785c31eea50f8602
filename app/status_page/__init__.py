"""The data subject's status page: the signed link in every mail, no login, no script."""

"""Confirming the subject's identity on a waiting request: email codes, documents, attestation."""

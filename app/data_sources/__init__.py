"""The systems holding personal data: their registry, dataset maps and connectors."""

"""The processing register (Art. 30 record): its model, the built-in register, the regulators."""

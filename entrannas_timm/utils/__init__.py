"""Small helpers every layer of the package may use: atomic file writes, the command error, finiteness checks.

Owns nothing about models, data or records, and imports nothing else of ``entrannas_timm``.
"""

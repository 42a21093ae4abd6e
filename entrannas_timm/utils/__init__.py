"""Small helpers every layer of the package may use: atomic file writes, the command error, finiteness checks,
the console output of long-running commands (bars only on a terminal).

Owns nothing about models, data or records, and imports nothing else of ``entrannas_timm``.
"""

"""The bottom layer every package may use: user errors, CUIT rules and calendar months.
It imports nothing of this repository, so the simulators, the source database and the
warehouse share these without importing each other."""

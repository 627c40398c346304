"""Marketing-lead workbooks: sizing them up, and reading them in a bounded child process."""

"""The report files: the reports as CSV, the HTML page, the workbook, their notes, and the
report directory they are published into."""

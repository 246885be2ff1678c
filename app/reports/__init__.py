"""Reports (DESIGN.md section 9, issue 6): every aggregate computed in the database, answered as
JSON, CSV, XLSX and, for the board, HTML with server-drawn SVG charts."""

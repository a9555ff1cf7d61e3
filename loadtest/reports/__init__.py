"""Self-contained HTML reports: SVG charts, the standard plots, the reports of each run."""

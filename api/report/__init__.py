"""The monthly report a pilot lead hands to the council (``urbanpulse report``): one
self-contained HTML file and CSV files with the scorecard, the weakest sensors and the
experiments (docs/kpis.md, "The monthly report")."""

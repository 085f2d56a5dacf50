"""Pages, the kiosk and the PDF (a real browser)."""

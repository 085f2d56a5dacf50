"""One item from photos to a report."""

"""One item from photos to verdict: decode, quality, view gate, stitch, reference search, fusion, report."""

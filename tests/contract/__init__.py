"""The model contract, deadlines, client text."""

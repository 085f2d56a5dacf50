"""The one training command on a folder: stages, their ledger, the acceptance gate, the card."""

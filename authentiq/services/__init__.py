"""What a running AuthentiQ owns (opened and closed together) and its background work: jobs, webhooks."""

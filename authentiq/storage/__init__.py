"""The database and the blob store: engines and migrations, and one store per table family."""

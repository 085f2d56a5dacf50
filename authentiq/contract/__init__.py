"""The contracts every layer shares: the model's I/O and metadata, the report, the item folder
layout, the deadline, client text, times and what a Triton repository carries."""

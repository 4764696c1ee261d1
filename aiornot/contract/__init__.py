"""The contract every layer shares: the Result an image gets, the typed model config and its fitted
scoring rules, JSON safety, repository paths. The bottom layer: it imports nothing else from aiornot."""

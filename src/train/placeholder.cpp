// Replaced by the trainer sources.

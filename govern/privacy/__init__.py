"""Release mechanisms for aggregates: the k floor and differential privacy."""

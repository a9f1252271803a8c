"""A card's claims against measured records. No torch."""

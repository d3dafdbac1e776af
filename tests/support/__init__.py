"""What tests share: helpers, fake servers and requirement marks (one place for each)."""

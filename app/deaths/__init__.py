"""Deaths: the root record, its listing, its corrections."""

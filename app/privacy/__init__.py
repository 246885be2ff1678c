"""What a pseudonymised client (a commissioner) may see of a patient, and the key that makes
the pseudonyms."""

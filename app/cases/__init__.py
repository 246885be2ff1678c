"""The whole case of one death (GET and PATCH /v1/deaths/{id}): a read model over the
death, its screening, referrals and reviews, above the domains it reads."""
